"""Tokenised splits and length-bucketed, dynamically padded batches."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
from transformers import PreTrainedTokenizerBase

from .tasks import Example, Task


@dataclass
class EncodedSplit:
    """A split tokenised once. Item i owns rows ``rows_per_item * i ...`` (COPA: one row per choice)."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    labels: list[int]
    groups: list[str]
    rows_per_item: int
    truncated: int  # how many items lost tokens to max_length

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_rows(self) -> int:
        return len(self.input_ids)

    def first(self, items: int) -> EncodedSplit:
        """The first ``items`` items, on to the end of the last one's group (a MultiRC question stays whole, so its
        exact match can be scored). ``truncated`` stays the whole split's count."""
        end = min(items, len(self))
        while 0 < end < len(self) and self.groups[end] == self.groups[end - 1]:
            end += 1
        rows = end * self.rows_per_item
        return replace(self, input_ids=self.input_ids[:rows], token_type_ids=self.token_type_ids[:rows],
                       labels=self.labels[:end], groups=self.groups[:end])

    def item_length(self, item: int) -> int:
        start = item * self.rows_per_item
        return max(len(row) for row in self.input_ids[start : start + self.rows_per_item])


@dataclass
class Batch:
    input_ids: torch.Tensor  # (rows, S)
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    labels: torch.Tensor  # (items,)
    items: torch.Tensor  # (items,) positions in the split
    rows: torch.Tensor  # (rows,) row positions in the split, to look up cached instance features

    def to(self, device: torch.device) -> "Batch":
        return Batch(*(tensor.to(device) for tensor in (self.input_ids, self.attention_mask, self.token_type_ids,
                                                        self.labels, self.items, self.rows)))

    @property
    def num_items(self) -> int:
        return self.labels.shape[0]

    def repeat(self, copies: int) -> "Batch":
        """The batch ``copies`` times over, block after block (items stay whole: their rows stay together)."""
        if copies == 1:
            return self
        return Batch(self.input_ids.repeat(copies, 1), self.attention_mask.repeat(copies, 1),
                     self.token_type_ids.repeat(copies, 1), self.labels.repeat(copies), self.items.repeat(copies),
                     self.rows.repeat(copies))


def special_token_counts(tokenizer: PreTrainedTokenizerBase) -> tuple[int, int]:
    """How many special tokens the tokenizer puts before a text and after it ([CLS] … [SEP]: 1, 1; T5's … </s>:
    0, 1; GPT-2: 0, 0). The layout keeps them at the ends, the prompt between."""
    text = "one two three"
    plain = tokenizer(text, add_special_tokens=False)["input_ids"]
    full = tokenizer(text)["input_ids"]
    lead = next(start for start in range(len(full) - len(plain) + 1) if full[start:start + len(plain)] == plain)
    return lead, len(full) - lead - len(plain)


def encode_examples(
    tokenizer: PreTrainedTokenizerBase, task: Task, examples: list[Example], max_length: int,
    answer_ids: tuple[int, ...] = (),
) -> EncodedSplit:
    """Tokenise text pairs, truncating the longer text first, and count items that were cut. ``answer_ids`` (a
    template such as "Answer:", for a head that reads the model's own prediction there) close every row, before
    its closing special tokens; truncation leaves room for them."""
    if not examples:
        raise ValueError(f"no {task.name} examples to encode")
    rows_per_item = len(examples[0].pairs)
    firsts = [pair[0] for example in examples for pair in example.pairs]
    seconds = [pair[1] for example in examples for pair in example.pairs]
    seconds_or_none = seconds if all(text is not None for text in seconds) else None
    if seconds_or_none is not None and \
            tokenizer.num_special_tokens_to_add(pair=True) == tokenizer.num_special_tokens_to_add(pair=False):
        seconds_or_none = ["\n" + text for text in seconds_or_none]  # a decoder's tokenizer puts nothing between
    text_length = max_length - len(answer_ids)
    full = tokenizer(firsts, seconds_or_none, truncation=False, verbose=False)["input_ids"]
    encoded = tokenizer(firsts, seconds_or_none, truncation=True, max_length=text_length,
                        return_token_type_ids=True)
    rows_cut = [len(whole) > text_length for whole in full]
    truncated = sum(any(rows_cut[i * rows_per_item : (i + 1) * rows_per_item]) for i in range(len(examples)))
    input_ids = encoded["input_ids"]
    token_types = encoded.get("token_type_ids") or [[0] * len(row) for row in input_ids]
    if answer_ids:
        tail = special_token_counts(tokenizer)[1]
        input_ids = [row[:len(row) - tail] + list(answer_ids) + row[len(row) - tail:] for row in input_ids]
        token_types = [types[:len(types) - tail] + [types[-1]] * len(answer_ids) + types[len(types) - tail:]
                       for types in token_types]
    return EncodedSplit(
        input_ids=input_ids,
        token_type_ids=token_types,
        labels=[example.label for example in examples],
        groups=[example.group for example in examples],
        rows_per_item=rows_per_item,
        truncated=truncated,
    )


def collate(split: EncodedSplit, items: list[int], pad_token_id: int) -> Batch:
    rows = [row for item in items for row in range(item * split.rows_per_item, (item + 1) * split.rows_per_item)]
    width = max(len(split.input_ids[row]) for row in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    token_types = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for position, row in enumerate(rows):
        length = len(split.input_ids[row])
        input_ids[position, :length] = torch.tensor(split.input_ids[row])
        token_types[position, :length] = torch.tensor(split.token_type_ids[row])
        mask[position, :length] = 1
    labels = torch.tensor([split.labels[item] for item in items], dtype=torch.long)
    return Batch(input_ids, mask, token_types, labels, torch.tensor(items, dtype=torch.long),
                 torch.tensor(rows, dtype=torch.long))


def batch_order(split: EncodedSplit, batch_size: int, shuffle: bool, seed: int = 0,
                bucket_batches: int = 50) -> list[list[int]]:
    """Items grouped into batches of similar length, so padding stays small.

    Training: shuffle, sort within windows of ``bucket_batches`` batches, shuffle the batches.
    Evaluation: sort everything by length (results are put back in order by item index).
    """
    items = list(range(len(split)))
    if not shuffle:
        items.sort(key=split.item_length)
        return [items[start : start + batch_size] for start in range(0, len(items), batch_size)]
    generator = random.Random(seed)
    generator.shuffle(items)
    window = batch_size * bucket_batches
    batches = []
    for start in range(0, len(items), window):
        chunk = sorted(items[start : start + window], key=split.item_length)
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    generator.shuffle(batches)
    return batches


def shard_items(items: list[int], index: int, count: int) -> list[int]:
    """Process ``index`` of ``count``'s contiguous share of a batch's items: with data parallelism every process
    takes its share of the same batch, so together they take the step one process would take on all of it."""
    return items[len(items) * index // count : len(items) * (index + 1) // count]


def iterate_batches(split: EncodedSplit, batch_size: int, pad_token_id: int, shuffle: bool,
                    seed: int = 0, shard: tuple[int, int] = (0, 1)) -> Iterator[Batch]:
    """Batches in ``batch_order``; ``shard`` (index, count): this process's share of each (a batch with fewer items
    than processes is skipped, as no process may step without the others)."""
    index, count = shard
    for items in batch_order(split, batch_size, shuffle, seed):
        if len(items) >= count:
            yield collate(split, shard_items(items, index, count), pad_token_id)
