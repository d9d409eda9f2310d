"""Cut extracted blocks into chunks that fit the model, counted with the model's own tokenizer."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from semsearch.documents import Block, Chunk, Document

DEFAULT_OVERLAP_TOKENS = 32
MIN_BLOCK_TOKENS = 24  # smaller blocks (a heading alone, a one-line section) join their neighbour
MAX_MERGE_GAP = 3  # ...when at most this many lines lie between them (line numbers stay exact)
# Bounded work and output whatever a file holds: a line longer than PIECE_CHARS is cut into pieces before the
# tokenizer sees it (a tokenizer's time grows faster than the length of one long word: a 9 MB line without a
# space took minutes), and a chunk holds at most CHARS_PER_TOKEN characters per token of the model's limit
# (4,096 for a 256-token model): what is stored, printed and embedded stays small even when the tokenizer
# counts a long run of letters as one unknown token.
PIECE_CHARS = 4096  # longer than any line of prose: ordinary text chunks exactly as before
CHARS_PER_TOKEN = 16
_BREAK = re.compile(r"[\s,;.:)\]}>|/\\-]")
_TOP_LEVEL_CODE = re.compile(
    r"^(?:def |class |async def |fn |func |function |pub |export |public |private |static |impl |struct |enum |interface |type |const |let |var |module |@)"
)


@dataclass
class _Unit:
    line: int
    text: str
    tokens: int
    boundary: bool  # a natural place to start a chunk
    cont: bool = False  # the rest of the previous unit's line (joined to it without a newline)


class Chunker:
    """Chunks never exceed ``max_tokens`` (the model's max sequence length) once the heading, the model's
    document prefix and its special tokens are added."""

    def __init__(self, tokenizer, max_tokens: int, overlap_tokens: int = DEFAULT_OVERLAP_TOKENS, prefix: str = ""):
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.overlap = overlap_tokens
        self.prefix = prefix
        self._special = len(tokenizer.encode("", add_special_tokens=True).ids)
        self._limit = max_tokens - self._special - (self.count(prefix) if prefix else 0)
        if self._limit < 16:
            raise ValueError(f"max_tokens={max_tokens} leaves no room for text")
        self.max_chars = max(PIECE_CHARS, CHARS_PER_TOKEN * max_tokens)

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def fits(self, chunk: Chunk) -> bool:
        return self.count(self.prefix + chunk.embed_text) + self._special <= self.max_tokens

    def chunk(self, doc: Document) -> list[Chunk]:
        chunks: list[Chunk] = []
        for block in self._merge_small(doc.blocks):
            chunks.extend(self._chunk_block(block))
        return [c for piece in chunks for c in self._ensure_fits(piece)]

    def _merge_small(self, blocks: list[Block]) -> list[Block]:
        """Join a tiny block to the next one of the same page and cell (a heading with its first section)."""
        out: list[Block] = []
        carry: Block | None = None
        for block in blocks:
            if carry is not None:
                gap = block.start_line - (carry.start_line + carry.text.count("\n") + 1)
                if carry.page == block.page and carry.cell == block.cell and 0 <= gap <= MAX_MERGE_GAP:
                    block = replace(block, text=carry.text + "\n" * (gap + 1) + block.text, start_line=carry.start_line)
                else:
                    out.append(carry)
                carry = None
            if self.count(block.text[:PIECE_CHARS]) < MIN_BLOCK_TOKENS:
                carry = block
            else:
                out.append(block)
        if carry is not None:
            out.append(carry)
        return out

    def _heading_budget(self, heading: str) -> tuple[str, int]:
        """Keep the heading path from eating the chunk: drop its outer parts until it takes at most a quarter."""
        if not heading:
            return "", self._limit
        parts = heading.split(" > ")
        while parts:
            h = " > ".join(parts)
            cost = self.count(h + "\n")
            if cost <= self._limit // 4:
                return h, self._limit - cost
            parts = parts[1:]
        return "", self._limit

    def _units(self, block: Block, budget: int) -> list[_Unit]:
        numbered = [
            (block.start_line + offset, piece, first)
            for offset, line in enumerate(block.text.split("\n"))
            for first, piece in _pieces(line)
        ]
        encodings = self.tokenizer.encode_batch([piece for _, piece, _ in numbered], add_special_tokens=False)
        units: list[_Unit] = []
        previous_blank = True
        for (number, line, first), enc in zip(numbered, encodings):
            if not first:  # the rest of a long line: never a place to start a chunk, never blank
                units.extend(self._cut(number, line, enc, budget, False, cont=True))
                continue
            blank = not line.strip()
            if block.kind == "code":
                boundary = (
                    previous_blank
                    and not blank
                    and (not line[:1].isspace() or bool(_TOP_LEVEL_CODE.match(line.lstrip())))
                )
            else:
                boundary = previous_blank and not blank
            units.extend(self._cut(number, line, enc, budget, boundary))
            previous_blank = blank
        return units

    @staticmethod
    def _cut(number: int, line: str, enc, budget: int, boundary: bool, cont: bool = False) -> list[_Unit]:
        """One unit for a (piece of a) line, or several cut at token boundaries when it has too many tokens."""
        n = len(enc.ids)
        if n <= budget:
            return [_Unit(number, line, n, boundary, cont)]
        offsets = enc.offsets
        units = []
        for start in range(0, n, budget):
            piece = offsets[start : start + budget]
            text = line[piece[0][0] : piece[-1][1]]
            units.append(_Unit(number, text, len(piece), boundary and start == 0, cont and start == 0))
        return units

    def _chunk_block(self, block: Block) -> list[Chunk]:
        """Pack whole segments (paragraphs, definitions) into chunks; split only a segment too big for one."""
        heading, budget = self._heading_budget(block.heading)
        segments: list[list[_Unit]] = []
        for unit in self._units(block, budget):
            if unit.boundary or not segments:
                segments.append([])
            segments[-1].append(unit)
        groups: list[list[_Unit]] = []
        current: list[_Unit] = []
        size = chars = 0
        for segment in segments:
            seg_size = sum(u.tokens for u in segment)
            seg_chars = sum(len(u.text) + 1 for u in segment)
            if seg_size > budget or seg_chars > self.max_chars:
                if current:
                    groups.append(current)
                groups.extend(self._split_segment(segment, budget))
                current, size, chars = [], 0, 0
            elif size + seg_size > budget or chars + seg_chars > self.max_chars:
                groups.append(current)
                current, size, chars = list(segment), seg_size, seg_chars
            else:
                current.extend(segment)
                size += seg_size
                chars += seg_chars
        if current:
            groups.append(current)
        chunks = []
        for group in groups:
            while group and not group[0].text.strip():
                group = group[1:]
            while group and not group[-1].text.strip():
                group = group[:-1]
            if not group:
                continue
            chunks.append(
                Chunk(
                    text="".join(("" if i == 0 or u.cont else "\n") + u.text for i, u in enumerate(group)),
                    start_line=group[0].line,
                    end_line=group[-1].line,
                    page=block.page,
                    heading=heading,
                    cell=block.cell,
                )
            )
        return chunks

    def _split_segment(self, units: list[_Unit], budget: int) -> list[list[_Unit]]:
        """Cut one over-long paragraph or definition by lines, repeating a few lines across each cut."""
        groups: list[list[_Unit]] = []
        current: list[_Unit] = []
        size = chars = 0
        for unit in units:
            if current and (size + unit.tokens > budget or chars + len(unit.text) + 1 > self.max_chars):
                groups.append(current)
                tail: list[_Unit] = []
                tail_size = tail_chars = 0
                for u in reversed(current):
                    if (
                        tail_size + u.tokens > self.overlap
                        or tail_size + u.tokens + unit.tokens > budget
                        or tail_chars + len(u.text) + len(unit.text) + 2 > self.max_chars
                    ):
                        break
                    tail.insert(0, u)
                    tail_size += u.tokens
                    tail_chars += len(u.text) + 1
                if len(tail) == len(current):
                    tail, tail_size, tail_chars = [], 0, 0
                current, size, chars = tail, tail_size, tail_chars
            current.append(unit)
            size += unit.tokens
            chars += len(unit.text) + 1
        if current:
            groups.append(current)
        return groups

    def _ensure_fits(self, chunk: Chunk) -> list[Chunk]:
        """Token counts of lines do not always add up exactly (merges across a newline); check and split."""
        if self.fits(chunk):
            return [chunk]
        lines = chunk.text.split("\n")
        if len(lines) > 1:
            half = len(lines) // 2
            first = replace(chunk, text="\n".join(lines[:half]), end_line=chunk.start_line + half - 1)
            second = replace(chunk, text="\n".join(lines[half:]), start_line=chunk.start_line + half)
            return self._ensure_fits(first) + self._ensure_fits(second)
        # one line: shorten it by characters until it fits
        text = chunk.text
        while text and not self.fits(replace(chunk, text=text)):
            text = text[: int(len(text) * 0.9)]
        rest = chunk.text[len(text) :]
        out = [replace(chunk, text=text)]
        if rest.strip():
            out.extend(self._ensure_fits(replace(chunk, text=rest)))
        return out


def _pieces(line: str) -> list[tuple[bool, str]]:
    """``line`` as (is its first piece, text) pieces of at most PIECE_CHARS characters, cut after a space or a
    punctuation mark in the second half of each piece when there is one (a word is rarely cut in two)."""
    if len(line) <= PIECE_CHARS:
        return [(True, line)]
    pieces: list[tuple[bool, str]] = []
    start = 0
    while start < len(line):
        end = min(start + PIECE_CHARS, len(line))
        if end < len(line):
            window = line[start + PIECE_CHARS // 2 : end]
            breaks = [m.end() for m in _BREAK.finditer(window)]
            if breaks:
                end = start + PIECE_CHARS // 2 + breaks[-1]
        pieces.append((start == 0, line[start:end]))
        start = end
    return pieces
