"""The data that flows through the pipeline: extracted blocks of text and the chunks cut from them."""

from __future__ import annotations

from dataclasses import dataclass, field

# Source code by suffix: the chunker cuts it at top-level definitions, and search counts it as code (not its
# documentation) when it ranks a folder of code.
CODE_SUFFIXES: frozenset[str] = frozenset(
    ".py .pyi .js .jsx .ts .tsx .mjs .cjs .java .kt .kts .scala .go .rs .c .h .cc .cpp .cxx .hpp .hh .cs .rb .php "
    ".swift .m .mm .lua .pl .pm .r .jl .sh .bash .zsh .fish .ps1 .sql .hs .ml .mli .ex .exs .erl .clj .dart .vue "
    ".svelte .el .vim .groovy .gradle .tf .proto .zig .nim .sol .nix .cmake .elm .fs .fsi .fsx .v .sv .vhd .vhdl "
    ".d .cr .hx .purs .rkt .scm .ss .lisp .cl .f90 .f95 .for .pas .ada .adb .ads .cob .asm .s .bat .cmd .psm1 "
    ".awk .sed .tcl .raku .p6 .gleam .odin .mojo .move .cairo .vala .wgsl .glsl .hlsl .metal .cu .cuh .sbt "
    ".cljs .cljc .edn .hrl .idr .agda .lean .thy .prisma .graphql .gql .thrift .bzl .star".split()
)


@dataclass(frozen=True)
class Block:
    """A run of extracted text with the position it came from.

    ``start_line`` is the 1-based line of the block's first line in the source
    (for PDFs: the line within ``page``; for notebooks: the line within ``cell``).
    Lines inside ``text`` are numbered consecutively from it.
    """

    text: str
    start_line: int = 1
    page: int | None = None
    heading: str = ""  # heading path, e.g. "Guide > Install > Linux"
    cell: int | None = None
    kind: str = "text"  # "text", "prose" or "code": how the chunker may cut it


@dataclass
class Document:
    """What an extractor makes of one file."""

    blocks: list[Block] = field(default_factory=list)
    title: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document small enough for the model."""

    text: str  # the text shown to the user
    start_line: int
    end_line: int
    page: int | None = None
    heading: str = ""
    cell: int | None = None

    @property
    def embed_text(self) -> str:
        """The text handed to the model: the heading path gives the chunk its context."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text
