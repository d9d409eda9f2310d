"""The seams: today's store and encoders implement the interfaces the layers above use, and an index built
through them with another encoder (a tiny deterministic one) works end to end without loading the model."""

from __future__ import annotations

import pytest
from tiny_encoder import TinyEncoder

from semsearch.index.indexer import Indexer, IndexOptions
from semsearch.model.interface import Encoder
from semsearch.search.engine import search
from semsearch.search.hits import QueryOptions
from semsearch.storage.access import open_for_search, open_store
from semsearch.storage.check import check_index
from semsearch.storage.interface import IndexStore, SearchIndex
from semsearch.storage.layout import IndexPaths


@pytest.fixture(params=["embedded", "postgresql"])
def index_home(request, isolated_home):
    """The index folder, standing for the embedded store or for a fresh PostgreSQL database (a real server)."""
    if request.param == "embedded":
        return isolated_home
    from semsearch.storespec import select

    return select(request.getfixturevalue("pg_url"), isolated_home)


def test_each_store_implements_the_store_and_search_interfaces(corpus, index_home):
    isolated_home = index_home
    encoder = TinyEncoder()
    assert isinstance(encoder, Encoder)
    Indexer(isolated_home, encoder=encoder).run(IndexOptions(paths=[corpus]))
    store = open_store(isolated_home)
    try:
        assert isinstance(store, IndexStore)
        index = open_for_search(store, with_vectors=True)
        assert isinstance(index, SearchIndex)
        assert index.vector_count == store.counts()["chunks"] > 0
        query = encoder.encode_queries(["sourdough starter flour"])
        with index.snapshot():
            nearest = index.nearest(query, 3)
            rows = index.chunk_rows([cid for cid, _ in nearest])
            cosines = index.cosines(query, [cid for cid, _ in nearest])
        assert "sourdough" in rows[nearest[0][0]].text.lower()
        assert [cosines[cid] for cid, _ in nearest] == pytest.approx([score for _, score in nearest], abs=1e-5)
    finally:
        store.close()


def test_an_index_built_with_another_encoder_answers_through_it_without_the_model(corpus, index_home):
    isolated_home = index_home
    encoder = TinyEncoder()
    report = Indexer(isolated_home, encoder=encoder).run(IndexOptions(paths=[corpus]))
    assert report.chunks_embedded > 0 and encoder.calls > 0
    assert not IndexPaths(isolated_home).onnx_dir.exists()  # the model was never exported nor loaded
    hits = search(isolated_home, QueryOptions("sourdough starter flour water", k=3, show_all=True), encoder=encoder)
    assert hits and hits[0].path.name == "sourdough.txt"
    keyword = search(isolated_home, QueryOptions("sourdough", k=3, mode="keyword", show_all=True))  # no encoder needed
    assert keyword and keyword[0].path.name == "sourdough.txt"
    assert check_index(isolated_home).consistent
