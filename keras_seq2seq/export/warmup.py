"""TF Serving's warm-up file: requests a server replays when it loads a model.

TF Serving reads `assets.extra/tf_serving_warmup_requests` (a TFRecord file
of `tensorflow.serving.PredictionLog` protos, at most 1,000) and runs each
request before it reports the model available, so that what the first
requests would otherwise pay (tracing, XLA's compilation of each input
shape) is paid at load time. The protos are written here from their field
numbers (tensorflow_serving/apis/prediction_log.proto, predict.proto,
model.proto), so that exporting needs TensorFlow only, not the
tensorflow-serving-api package.
"""

import tensorflow as tf

WARMUP_FILE = "tf_serving_warmup_requests"
# TF Serving replays at most this many records.
MAX_WARMUP_REQUESTS = 1000

# Field numbers of the messages written.
_PREDICTION_LOG_PREDICT_LOG = 6
_PREDICT_LOG_REQUEST = 1
_PREDICT_REQUEST_MODEL_SPEC = 1
_PREDICT_REQUEST_INPUTS = 2
_MODEL_SPEC_SIGNATURE_NAME = 3
_MAP_ENTRY_KEY, _MAP_ENTRY_VALUE = 1, 2


def _varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number, payload):
    """A length-delimited field (a message, string or bytes)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def prediction_log(signature_name, inputs):
    """The serialized `PredictionLog` of a Predict request.

    Args:
        signature_name: the signature the request calls.
        inputs: `{input name: value}`, each value what `tf.make_tensor_proto`
            takes (a list of strings, an array).
    """
    request = _field(_PREDICT_REQUEST_MODEL_SPEC,
                     _field(_MODEL_SPEC_SIGNATURE_NAME, signature_name.encode("utf-8")))
    for name, value in inputs.items():
        tensor = tf.make_tensor_proto(value).SerializeToString()
        request += _field(_PREDICT_REQUEST_INPUTS,
                          _field(_MAP_ENTRY_KEY, name.encode("utf-8"))
                          + _field(_MAP_ENTRY_VALUE, tensor))
    return _field(_PREDICTION_LOG_PREDICT_LOG, _field(_PREDICT_LOG_REQUEST, request))


def write_warmup_requests(path, requests):
    """Writes `requests` (`(signature_name, inputs)` pairs, see
    `prediction_log`) as a TF Serving warm-up file."""
    if len(requests) > MAX_WARMUP_REQUESTS:
        raise ValueError(f"TF Serving replays at most {MAX_WARMUP_REQUESTS} warm-up requests, "
                         f"got {len(requests)}")
    with tf.io.TFRecordWriter(path) as writer:
        for signature_name, inputs in requests:
            writer.write(prediction_log(signature_name, inputs))
