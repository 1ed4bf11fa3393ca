"""`EncoderAttentionDecoder`: any encoder under the text models' attention decoder."""

import keras
from keras import ops

from keras_seq2seq.layers import AttentionDecoder
from keras_seq2seq.models.base import SequenceModel


class EncoderAttentionDecoder(SequenceModel):
    """The base of models that read a non-text input into text (`ImageToText`,
    `SpeechToText`): an encoder of the subclass's gives a memory, and an
    `AttentionDecoder` attends over it while it writes, one token a step.

    Subclasses build `self.encoder` and implement `encoder_outputs`,
    `source_mask`, `source_inputs` and `build_encoder`; they may add
    training losses of the encoder's own (`add_encoder_losses`).

    Args:
        vocabulary_size: size of the output vocabulary (the tokenizer's).
        embedding_dim: size of the output token embeddings.
        units: size of the memory and of each decoder layer.
        decoder_layers: stacked decoder RNN layers.
        cell_type: `"lstm"` or `"gru"`.
        attention: a name from `layers.attention.ATTENTION_MECHANISMS`.
        attention_units: hidden size of additive attention mechanisms.
        input_feeding: feed the previous attentional vector to the decoder.
        dropout: dropout rate in encoder and decoder.
    """

    def __init__(self, vocabulary_size, embedding_dim=64, units=128, decoder_layers=1,
                 cell_type="lstm", attention="bahdanau", attention_units=None,
                 input_feeding=True, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if attention is None:
            raise ValueError(f"{self.__class__.__name__} reads its input through attention: "
                             "give an attention mechanism")
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.decoder_layers = decoder_layers
        self.cell_type = cell_type
        self.attention_name = attention
        self.attention_units = attention_units
        self.input_feeding = input_feeding
        self.dropout = dropout
        self.target_embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, name="target_embedding")
        self.embedding_dropout = keras.layers.Dropout(dropout)
        self.decoder = AttentionDecoder(
            units, num_layers=decoder_layers, cell_type=cell_type, attention=attention,
            attention_units=attention_units, input_feeding=input_feeding, dropout=dropout,
            name="decoder")
        self.output_projection = keras.layers.Dense(vocabulary_size, name="output_projection")

    # -- what subclasses implement ------------------------------------------------

    def build_encoder(self):
        """Builds `self.encoder` for the model's input shapes."""
        raise NotImplementedError

    def encoder_outputs(self, inputs, training=False):
        """`(memory [batch, source, units], states)`, states as `RNNEncoder` gives them."""
        raise NotImplementedError

    def source_inputs(self, inputs):
        """What `encode` takes, from `call`'s dict of inputs."""
        raise NotImplementedError

    def add_encoder_losses(self, inputs, memory, decoder_input_ids):
        """Adds (`add_loss`) training losses of the encoder's own, if any:
        `inputs` as `encode` takes them, `memory` the encoder's output,
        `decoder_input_ids` [batch, target] BOS and the target, PAD after.
        Called in training only; none by default."""

    # -- the SequenceModel interface --------------------------------------------

    def build(self, input_shape=None):
        self.build_encoder()
        self.target_embedding.build((None, None))
        self.decoder.build((None, None, self.embedding_dim), (None, None, self.units))
        self.output_projection.build((None, None, self.units))
        self.built = True

    def encode(self, inputs, training=False):
        """The input (see the subclass) -> `(context, state)` of the decoder."""
        memory, states = self.encoder_outputs(inputs, training=training)
        return self._decoder_start(inputs, memory, states)

    def _decoder_start(self, inputs, memory, states):
        context = self.decoder.prepare_context(memory, self.source_mask(inputs))
        return context, self.decoder.initial_state(states, context)

    def step(self, token_ids, state, context):
        """One token further: `(log_probs float32 [rows, vocabulary_size], state)`."""
        embedded = self.target_embedding(ops.convert_to_tensor(token_ids, "int32"))
        output, state = self.decoder.step(embedded, state, context, training=False)
        return ops.log_softmax(self.logits(output), axis=-1), state

    def logits(self, outputs):
        return ops.cast(self.output_projection(outputs), "float32")

    def length_limits(self, inputs, max_length):
        """Every output may use the whole buffer, `max_length` tokens."""
        mask = self.source_mask(inputs)
        return ops.full((ops.shape(mask)[0],), max_length, "int32")

    @property
    def has_coverage(self):
        return True

    def coverage(self, state):
        return state["coverage"]

    @property
    def has_attention(self):
        return True

    def attention(self, state):
        return state["alignments"]

    # -- teacher-forced training --------------------------------------------------

    def call(self, inputs, training=False, return_attention=False):
        """Teacher-forced logits [batch, target, vocabulary_size] (float32);
        with `return_attention`, also the alignments [batch, target, source].
        In training, adds the encoder's own losses (`add_encoder_losses`)."""
        source = self.source_inputs(inputs)
        decoder_input_ids = ops.convert_to_tensor(inputs["decoder_input_ids"], "int32")
        memory, states = self.encoder_outputs(source, training=training)
        if training:
            self.add_encoder_losses(source, memory, decoder_input_ids)
        context, state = self._decoder_start(source, memory, states)
        embedded = self.embedding_dropout(self.target_embedding(decoder_input_ids),
                                          training=training)
        outputs, alignments = self.decoder(embedded, context, state, training=training)
        logits = self.logits(outputs)
        return (logits, alignments) if return_attention else logits

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            embedding_dim=self.embedding_dim,
            units=self.units,
            decoder_layers=self.decoder_layers,
            cell_type=self.cell_type,
            attention=self.attention_name,
            attention_units=self.attention_units,
            input_feeding=self.input_feeding,
            dropout=self.dropout,
        )
        return config
