"""One process that uses many indexes of the same model (a test run, a long-lived caller) loads its ONNX encoder once."""

from __future__ import annotations

from conftest import write_corpus


def test_indexes_of_the_same_model_share_one_loaded_encoder(tmp_path):
    from semsearch.index.indexer import Indexer, IndexOptions
    from semsearch.model.encoders import OnnxTextEncoder, _loaded

    docs = write_corpus(tmp_path / "docs", {"a.txt": "Owls hunt voles at night over the meadow."})
    encoders = []
    for name in ("one", "two", "three"):
        indexer = Indexer(tmp_path / name)
        indexer.run(IndexOptions(paths=[docs]))
        assert isinstance(indexer._encoder, OnnxTextEncoder)
        encoders.append(indexer._encoder.onnx)
    # each index has its own export on disk, but the same model's session is loaded only once
    assert encoders[0] is encoders[1] is encoders[2]
    assert len([key for key in _loaded if key.startswith("onnx:")]) == 1
