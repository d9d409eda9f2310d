"""The embedding model: which model, its encoders (ONNX, torch), export and cache, Matryoshka, rerank."""
