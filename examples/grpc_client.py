"""Calls a keras-seq2seq export on TensorFlow Serving over gRPC.

    pip install tensorflow-serving-api grpcio
    python examples/grpc_client.py --host localhost:8500 --model quickstart "3rd of March 1999"
"""

import argparse

import grpc
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", nargs="+")
    parser.add_argument("--host", default="localhost:8500")
    parser.add_argument("--model", default="quickstart")
    parser.add_argument("--beam-size", type=int, default=None,
                        help="use beam_search_options with this width")
    args = parser.parse_args()

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(args.host))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = args.model
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(args.text, dtype=tf.string))
    if args.beam_size:
        request.model_spec.signature_name = "beam_search_options"
        request.inputs["beam_size"].CopyFrom(tf.make_tensor_proto(args.beam_size, dtype=tf.int32))
        request.inputs["alpha"].CopyFrom(tf.make_tensor_proto(0.6, dtype=tf.float32))
        request.inputs["beta"].CopyFrom(tf.make_tensor_proto(0.0, dtype=tf.float32))
        request.inputs["max_length"].CopyFrom(tf.make_tensor_proto(64, dtype=tf.int32))
        request.inputs["target_prefix"].CopyFrom(
            tf.make_tensor_proto([""] * len(args.text), dtype=tf.string))
        response = stub.Predict(request, timeout=10.0)
        translations = tf.make_ndarray(response.outputs["translations"])
        scores = tf.make_ndarray(response.outputs["scores"])
        for text, row, row_scores in zip(args.text, translations, scores):
            print(text)
            for t, s in zip(row, row_scores):
                print(f"  {s:.4f}  {t.decode('utf-8')}")
        return
    request.model_spec.signature_name = "serving_default"
    response = stub.Predict(request, timeout=10.0)
    translations = tf.make_ndarray(response.outputs["translation"])
    scores = tf.make_ndarray(response.outputs["score"])
    for text, translation, score in zip(args.text, translations, scores):
        print(f"{text} -> {translation.decode('utf-8')}  ({score:.4f})")


if __name__ == "__main__":
    main()
