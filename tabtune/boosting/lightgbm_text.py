"""LightGBM's model text: parsing it and splicing trees into it.

A LightGBM model file is text: a header, ``tree_sizes=`` (the byte size of each tree block),
one ``Tree=i`` block per tree, then ``end of trees`` and the feature importances and
parameters. Writing a model of hundreds of trees costs more than the fit of a few new ones, so
a session writes a model that shares the base's trees by splicing the base's blocks (leaf
values rewritten for a refit) with the new trees' (:func:`splice`), and reads the base's leaf
values (:class:`Leaves`) and splits (:class:`Splits`) from its text. A model adapted from a
base is stored as what it changes (:func:`text_delta`, :func:`apply_text_delta`): the base's
trees it rewrites (only the changed numbers of a line, such as refitted leaf values), its new
trees, and its header and tail as line edits. Nothing here calls LightGBM.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Leaves",
    "Splits",
    "apply_line_edits",
    "apply_text_delta",
    "line_edits",
    "splice",
    "text_delta",
    "tree_blocks",
    "tree_section",
]

_LEAF_VALUES = re.compile(r"^leaf_value=(.*)$", re.MULTILINE)
# LightGBM treats |value| <= this as zero when predicting (kZeroThreshold).
_ZERO = 1e-35


@dataclass
class Leaves:
    """Leaf values of a model's trees (``values[tree][leaf]``) and its objective line."""

    values: list[np.ndarray]
    objective: str

    @classmethod
    def parse(cls, text: str) -> Leaves:
        """Leaves of the model text ``text`` (``Booster.model_to_string()``).

        LightGBM writes leaf values with 17 significant digits: they parse back to the
        booster's doubles exactly.
        """
        objective = re.search(r"^objective=(.*)$", text, re.MULTILINE)
        return cls(
            values=[
                np.array(line.split(" "), dtype=np.float64) for line in _LEAF_VALUES.findall(text)
            ],
            objective="" if objective is None else objective.group(1).strip(),
        )

    @property
    def max_leaves(self) -> int:
        """The largest number of leaves of a tree."""
        return max((len(v) for v in self.values), default=1)


@dataclass
class Splits:
    """Where the base's trees split, feature by feature: which trees a change of a row's
    value of a feature can send down another path.

    A numerical split of tree ``t`` on feature ``j`` at threshold ``c`` sends a row left when
    its value is ``<= c`` (LightGBM's ``NumericalDecision``; thresholds are written with 17
    significant digits, so they parse back exactly). A value moving from ``a`` to ``b`` can
    therefore change the row's path only in trees with a threshold in ``[min, max)``, or with
    a categorical split on ``j``. Missing values and values LightGBM reads as zero take the
    split's default direction: a change from or to one is treated as affecting every tree
    that splits on the feature.
    """

    #: Per feature: sorted numerical thresholds and the tree of each.
    thresholds: list[tuple[np.ndarray, np.ndarray]]
    #: Per feature: the trees with any split on it, and those with a categorical split on it.
    any_split: list[np.ndarray]
    categorical: list[np.ndarray]
    n_trees: int

    @classmethod
    def parse(cls, blocks: list[str], n_features: int) -> Splits | None:
        """From the tree blocks of a model's text; None when a block does not parse."""
        numeric: list[list[tuple[float, int]]] = [[] for _ in range(n_features)]
        any_split: list[set[int]] = [set() for _ in range(n_features)]
        categorical: list[set[int]] = [set() for _ in range(n_features)]
        for tree, block in enumerate(blocks):
            fields = dict(line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)
            if int(fields.get("num_leaves", "1")) <= 1:
                continue
            try:
                features = [int(v) for v in fields["split_feature"].split()]
                thresholds = [float(v) for v in fields["threshold"].split()]
                kinds = [int(v) for v in fields["decision_type"].split()]
            except (KeyError, ValueError):
                return None
            if not len(features) == len(thresholds) == len(kinds):
                return None
            for feature, threshold, kind in zip(features, thresholds, kinds, strict=True):
                if not 0 <= feature < n_features:
                    return None
                any_split[feature].add(tree)
                if kind & 1:
                    categorical[feature].add(tree)
                else:
                    numeric[feature].append((threshold, tree))
        sorted_numeric = []
        for pairs in numeric:
            pairs.sort()
            sorted_numeric.append(
                (
                    np.array([c for c, _ in pairs], dtype=np.float64),
                    np.array([t for _, t in pairs], dtype=np.int64),
                )
            )
        return cls(
            sorted_numeric,
            [np.array(sorted(t), dtype=np.int64) for t in any_split],
            [np.array(sorted(t), dtype=np.int64) for t in categorical],
            len(blocks),
        )

    def changed(self, old: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows (of ``(n, n_features)`` ``old`` and ``new``) whose path may differ in some
        tree, and which trees (boolean ``(n_trees,)``) any of them may take another path in."""
        rows = np.zeros(len(old), dtype=bool)
        trees = np.zeros(self.n_trees, dtype=bool)
        differs = (old != new) & ~(np.isnan(old) & np.isnan(new))
        for feature in np.flatnonzero(differs.any(axis=0)).tolist():
            at = np.flatnonzero(differs[:, feature])
            a, b = old[at, feature], new[at, feature]
            special = np.isnan(a) | np.isnan(b) | (np.abs(a) <= _ZERO) | (np.abs(b) <= _ZERO)
            if self.any_split[feature].size and special.any():
                rows[at[special]] = True
                trees[self.any_split[feature]] = True
            if self.categorical[feature].size:
                rows[at] = True
                trees[self.categorical[feature]] = True
            values, owners = self.thresholds[feature]
            plain = ~special
            if not values.size or not plain.any():
                continue
            lo = np.searchsorted(values, np.minimum(a[plain], b[plain]), side="left")
            hi = np.searchsorted(values, np.maximum(a[plain], b[plain]), side="left")
            crossed = hi > lo
            if not crossed.any():
                continue
            rows[at[plain][crossed]] = True
            # Thresholds in any row's [lo, hi): a running count of open intervals.
            depth = np.zeros(len(values) + 1, dtype=np.int64)
            np.add.at(depth, lo[crossed], 1)
            np.add.at(depth, hi[crossed], -1)
            trees[owners[np.cumsum(depth[:-1]) > 0]] = True
        return rows, trees


def tree_section(text: str) -> tuple[str, list[str], str] | None:
    """Split LightGBM model text into (header up to ``tree_sizes=``, tree blocks, tail from
    ``end of trees``); None when the text is not laid out as expected."""
    head, found, rest = text.partition("\ntree_sizes=")
    if not found:
        return None
    sizes_line, _, body = rest.partition("\n")
    if not body.startswith("\n"):
        return None
    body = body[1:]
    blocks, pos = [], 0
    for index, size in enumerate(int(v) for v in sizes_line.split()):
        block = body[pos : pos + size]
        if not block.startswith(f"Tree={index}\n"):
            return None
        blocks.append(block)
        pos += size
    tail = body[pos:]
    return (head, blocks, tail) if tail.startswith("end of trees") else None


def tree_blocks(text: str) -> list[str] | None:
    """The tree blocks (``Tree=i`` ... up to the next) of a model's text."""
    section = tree_section(text)
    return None if section is None else section[1]


def splice(shell: str, base_blocks: list[str], values: list[np.ndarray] | None) -> str | None:
    """The text of a model made of the base's trees (leaf values ``values`` if given) and
    the new trees of ``shell``: its own text written from the base's trees on
    (``model_to_string(start_iteration=base rounds)``: header, new trees, feature
    importances and parameters of the model). None when that cannot be done exactly."""
    section = tree_section(shell)
    if section is None:
        return None
    head, new, tail = section
    if values is not None and len(values) != len(base_blocks):
        return None
    blocks: list[str] = []
    for index, block in enumerate(base_blocks):
        if values is not None:
            before, found, rest = block.partition("\nleaf_value=")
            if not found:
                return None
            line = " ".join(format(float(v), ".17g") for v in values[index])
            block = before + found + line + rest[rest.index("\n") :]
        blocks.append(block)
    offset = len(base_blocks)
    for index, block in enumerate(new):
        if "\nnum_leaves=1\n" in block:
            return None  # a constant tree that trained is written unlike a loaded one
        blocks.append(f"Tree={offset + index}\n" + block[len(f"Tree={index}\n") :])
    sizes = " ".join(str(len(block.encode("utf-8"))) for block in blocks)
    return head + "\ntree_sizes=" + sizes + "\n\n" + "".join(blocks) + tail


# -- deltas: a model stored as what it changes in its base -----------------------------------


def line_edits(old: list[str], new: list[str]) -> list[Any]:
    """``new`` as edits of ``old``: ``[start, stop]`` copies ``old[start:stop]``, a string is a
    new line (:func:`apply_line_edits` rebuilds ``new`` exactly)."""
    ops: list[Any] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            ops.append([i1, i2])
        else:
            ops.extend(new[j1:j2])
    return ops


def apply_line_edits(old: list[str], ops: list[Any]) -> list[str]:
    """The lines :func:`line_edits` described."""
    out: list[str] = []
    for op in ops:
        if isinstance(op, str):
            out.append(op)
        else:
            out.extend(old[int(op[0]) : int(op[1])])
    return out


def _block_edits(old: str, new: str) -> dict[str, Any] | None:
    """Tree block ``new`` as edits of ``old`` (same lines and keys): ``{line index: edit}``,
    an edit being the whole line or ``[positions, tokens]`` of the space-separated numbers
    that changed. None when the blocks are not laid out alike."""
    a, b = old.split("\n"), new.split("\n")
    if len(a) != len(b):
        return None
    edits: dict[str, Any] = {}
    for index, (x, y) in enumerate(zip(a, b, strict=True)):
        if x == y:
            continue
        kx, _, vx = x.partition("=")
        ky, _, vy = y.partition("=")
        tx, ty = vx.split(" "), vy.split(" ")
        if kx == ky and len(tx) == len(ty):
            at = [j for j, (p, q) in enumerate(zip(tx, ty, strict=True)) if p != q]
            if 2 * len(at) < len(ty):
                edits[str(index)] = [at, [ty[j] for j in at]]
                continue
        edits[str(index)] = y
    return edits


def _apply_block_edits(old: str, edits: dict[str, Any]) -> str:
    lines = old.split("\n")
    for key, edit in edits.items():
        index = int(key)
        if isinstance(edit, str):
            lines[index] = edit
            continue
        name, _, value = lines[index].partition("=")
        tokens = value.split(" ")
        for at, token in zip(edit[0], edit[1], strict=True):
            tokens[int(at)] = str(token)
        lines[index] = name + "=" + " ".join(tokens)
    return "\n".join(lines)


def text_delta(base: str, full: str) -> dict[str, Any] | None:
    """Model text ``full`` as what it changes in model text ``base`` (JSON-ready).

    ``trees[i]`` is ``None`` for the base's tree ``i`` unchanged, ``{"edits": ...}`` for it
    rewritten (a refit: its leaf values), or the block's text (a new tree, or one laid out
    unlike the base's); the header and tail are line edits. None when either text is not
    laid out as expected (then the caller keeps the full text).
    """
    b, f = tree_section(base), tree_section(full)
    if b is None or f is None:
        return None
    trees: list[Any] = []
    for index, block in enumerate(f[1]):
        if index >= len(b[1]):
            trees.append(block)
        elif block == b[1][index]:
            trees.append(None)
        else:
            edits = _block_edits(b[1][index], block)
            trees.append(block if edits is None else {"edits": edits})
    return {
        "head": line_edits(b[0].split("\n"), f[0].split("\n")),
        "tail": line_edits(b[2].split("\n"), f[2].split("\n")),
        "trees": trees,
    }


def apply_text_delta(base: str, delta: dict[str, Any]) -> str:
    """The model text :func:`text_delta` described, rebuilt from ``base``.

    Raises
    ------
    ValueError
        The base's text is not laid out as expected, or the delta names a tree it lacks.
    """
    section = tree_section(base)
    if section is None:
        raise ValueError("the base model's text is not laid out as expected")
    head, base_blocks, tail = section
    blocks = []
    for index, entry in enumerate(delta["trees"]):
        if isinstance(entry, str):
            blocks.append(entry)
        elif index >= len(base_blocks):
            raise ValueError(f"the delta rewrites tree {index}, which the base does not have")
        elif entry is None:
            blocks.append(base_blocks[index])
        else:
            blocks.append(_apply_block_edits(base_blocks[index], entry["edits"]))
    sizes = " ".join(str(len(block.encode("utf-8"))) for block in blocks)
    return (
        "\n".join(apply_line_edits(head.split("\n"), delta["head"]))
        + "\ntree_sizes="
        + sizes
        + "\n\n"
        + "".join(blocks)
        + "\n".join(apply_line_edits(tail.split("\n"), delta["tail"]))
    )
