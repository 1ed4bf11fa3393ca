from setuptools import find_packages, setup

setup(
    name="keras-seq2seq",
    version="0.2.0",
    description=(
        "Sequence-to-sequence models for TensorFlow/Keras: attention, pointer "
        "networks, pointer-generators; trained with model.fit, exported for "
        "TF Serving and TFLite."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_seq2seq", "keras_seq2seq.*"]),
    # The built-in recipes are YAML files inside the package.
    package_data={"keras_seq2seq.zoo": ["recipes/*.yaml"]},
    python_requires=">=3.10,<3.14",
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tensorflow-text>=2.21,<2.22",
        "keras>=3.12,<4",
        "tensorboard>=2.20,<2.22",
        "keras-hub>=0.32,<0.33",
        "sentencepiece>=0.2,<0.3",
        "numpy>=1.26,<3",
        "matplotlib>=3.8,<4",
        # Composing digit-string images (data/digit_strings.py).
        "pillow>=10",
        "rouge-score>=0.1.2",
        "pyyaml>=6",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "sacrebleu>=2.4,<3",
            "ai-edge-litert>=2.3,<2.4",
            "nbclient>=0.10",
            "nbformat>=5.10",
            "ipykernel>=6.29",
            "hypothesis>=6.100",
        ],
    },
    entry_points={"console_scripts": ["keras-seq2seq=keras_seq2seq.cli:main"]},
)
