"""What the page draws from dp_core's results: the token layout as HTML, probabilities as tables for plots.

Pure functions (no Gradio), so tests can check them directly. Every piece of user text is escaped.
"""

from __future__ import annotations

import html

import pandas as pd

from dp_core.choices import ChoiceStatistics, candidate_names
from dp_core.explain import AFTER, BEFORE, INACTIVE, INPUT, InstanceDecision

from .readings import WHAT, how_sure, same_choice_share

COLOURS = {INPUT: "#f3f4f6", BEFORE: "#2563eb", AFTER: "#ea580c", INACTIVE: "#ffffff"}
LEGEND = {BEFORE: "prompt before the input", AFTER: "prompt after the input", INACTIVE: "switched off (length)"}
SHORT_LEGEND = {BEFORE: "before the input", AFTER: "after it", INACTIVE: "off"}  # under a comparison's layouts


CHIP = "padding:1px 4px;margin:1px;border-radius:4px;display:inline-block;font-family:monospace"


def deep_layout_html(decision: InstanceDecision, caption: str, layers: int) -> str:
    """Deep prompts as they are: vectors in every layer, none in the sentence; the input's tokens in order, and where
    their positions start (the only thing a deep prompt's place moves)."""
    words = [(text, kind) for text, kind in decision.layout if kind == INPUT]
    chips = "".join(chip(text, kind, piece) for (text, kind), piece in zip(words, word_pieces(words)))
    block = (f'<span class="dp-token" data-kind="prompt-deep" style="background:{COLOURS[BEFORE]};color:#fff;'
             f'font-weight:600;{CHIP}">{decision.active_length} prompt vectors × {layers} layers</span>')
    start = (f"<div style='font-size:85%;color:#374151'>The input's positions start at "
             f"<b>{decision.tokens_before}</b>.</div>")
    title = f"<div style='font-weight:600;margin:4px 0'>{html.escape(caption)}</div>" if caption else ""
    return (f"<div class='dp-layout'>{title}<div style='line-height:1.9'>{block} {chips}</div>{start}</div>")


def word_pieces(layout: list[tuple[str, str]]) -> list[bool]:
    """Per token: whether it continues the word before it. WordPiece marks such pieces ("##ation"); byte-level BPE
    marks the others, which start with a space: a piece there is letters right after letters."""
    spaced = any(text[:1].isspace() for text, kind in layout if kind == INPUT)
    pieces, previous = [], None
    for text, kind in layout:
        continues = kind == INPUT and previous is not None and (
            text.startswith("##") or spaced and text[:1].isalnum() and previous[-1:].isalnum())
        pieces.append(continues)
        previous = text if kind == INPUT else None
    return pieces


def pieces_note(decisions: list[InstanceDecision]) -> str:
    """A line saying what touching chips are, where the drawn input has word pieces (nothing otherwise)."""
    if not any(any(word_pieces(decision.layout)) for decision in decisions):
        return ""
    return "<div style='font-size:85%;color:#6b7280'>Touching chips are pieces of one word.</div>"


def chip(text: str, kind: str, piece: bool = False) -> str:
    """One token as a chip coloured by its kind; a word piece touches the chip before it, without its "##"."""
    text = shown(text[2:] if piece and text.startswith("##") else text)
    if kind == INPUT:
        style = f"background:{COLOURS[INPUT]};color:#111827"
    elif kind == INACTIVE:
        style = f"background:{COLOURS[INACTIVE]};color:#9ca3af;border:1px dashed #9ca3af"
    else:
        style = f"background:{COLOURS[kind]};color:#fff;font-weight:600"
    joined = ";margin-left:-2px;border-left:1px solid #d1d5db" if piece else ""
    return (f'<span class="dp-token" data-kind="{kind}"{" data-piece=1" if piece else ""} '
            f'style="{style};{CHIP}{joined}">{html.escape(text)}</span>')


def shown(text: str) -> str:
    """A token of whitespace only (SmolLM2 splits " 4" into " " and "4") as a visible sign, not a blank chip."""
    return text if text.strip() else ("↵" if "\n" in text else "␣")


def layout_html(decision: InstanceDecision, caption: str = "", layers: int | None = None,
                legend: dict[str, str] | None = LEGEND) -> str:
    """The input's tokens in order with the prompt slots where the method put them (deep prompts: ``layers``, the
    backbone's layer count, draws them as they are, ``deep_layout_html``); ``legend``: None to leave it out."""
    if decision.deep and layers:
        return deep_layout_html(decision, caption, layers)
    note = ("<div style='font-size:85%;color:#6b7280'>Deep prompts: the slots stand for keys/values in every "
            "layer; their side only decides where the input's positions start.</div>" if decision.deep else "")
    return strip_html(decision.layout, caption, legend) + note


def layout_legend(layouts: list[list[tuple[str, str]]], legend: dict[str, str] = SHORT_LEGEND) -> str:
    """What the colours of the chips mean, for the kinds these layouts hold."""
    kinds = {kind for layout in layouts for _, kind in layout} - {INPUT}
    shown = " ".join(f'<span style="color:{COLOURS[kind] if kind != INACTIVE else "#6b7280"}">■ {label}</span>'
                     for kind, label in legend.items() if kind in kinds)
    return f"<div style='font-size:85%'>{shown}</div>" if shown else ""


def strip_html(layout: list[tuple[str, str]], caption: str = "", legend: dict[str, str] | None = LEGEND) -> str:
    """Tokens as chips, each coloured by its kind (input, prompt before or after it, switched off), with a legend
    (None: without)."""
    chips = [chip(text, kind, piece) for (text, kind), piece in zip(layout, word_pieces(layout))]
    title = f"<div style='font-weight:600;margin:4px 0'>{html.escape(caption)}</div>" if caption else ""
    below = layout_legend([layout], legend) if legend else ""
    return f"<div class='dp-layout'>{title}<div style='line-height:1.9'>{''.join(chips)}</div>{below}</div>"


def sure_meter(title: str, probability: float, no_preference: float) -> str:
    """How sure DP is of a choice, as one bar: filled to its probability, a mark where no preference would be
    (``title`` says both figures in words)."""
    return (f"<div class='dp-meter' data-probability='{probability:.4f}' style='margin:6px 0'>"
            f"<div style='font-size:90%'>{html.escape(title)}</div>"
            f"<div style='position:relative;height:14px;background:#e5e7eb;border-radius:7px'>"
            f"<div style='width:{probability:.1%};height:100%;background:#2563eb;border-radius:7px'></div>"
            f"<div title='no preference' style='position:absolute;left:{no_preference:.1%};top:-3px;width:2px;"
            f"height:20px;background:#111827'></div></div>"
            f"<div style='font-size:80%;color:#6b7280;white-space:nowrap;"
            f"margin-left:max(0px,calc({no_preference:.1%} - 4px))'>▲</div></div>")


CLASS_COLOURS = ("#0d9488", "#e11d48", "#d97706", "#7c3aed")  # one per class: teal, rose, amber, violet


def what_if_strip(title: str, forced: list[list[float]], marks: dict[int, str], names: list[str],
                  label_names: tuple[str, ...]) -> str:
    """The answer of DP's own prompt moved to each candidate (``names``), one square per candidate coloured by its
    class; ``marks`` (candidate -> a short word: DP's choice, the fixed prompt's layout) written under their squares
    (``what_if_legend`` says what the colours and marks mean, once for every strip)."""
    cells = []
    for candidate, (name, row) in enumerate(zip(names, forced)):
        answer = max(range(len(row)), key=row.__getitem__)
        mark = marks.get(candidate, "")
        cells.append(f"<div class='dp-cell' data-answer='{html.escape(label_names[answer])}' "
                     f"style='text-align:center;width:38px'><div title='{html.escape(label_names[answer])} "
                     f"{max(row):.0%}' style='background:{CLASS_COLOURS[answer % len(CLASS_COLOURS)]};color:#fff;"
                     f"border-radius:4px;padding:3px 0;font-size:85%'>{html.escape(name)}</div>"
                     f"<div class='dp-mark' style='font-size:75%;font-weight:600;min-height:1.2em;line-height:1.1;"
                     f"white-space:nowrap'>{'▲ ' + html.escape(mark) if mark else ''}</div></div>")
    return (f"<div class='dp-what-if' style='margin:8px 0'><div style='font-weight:600'>{html.escape(title)}</div>"
            f"<div style='display:flex;flex-wrap:wrap;gap:2px'>{''.join(cells)}</div></div>")


def what_if_legend(label_names: tuple[str, ...], marks: dict[str, str]) -> str:
    """What the strips' colours and marks mean (``marks``: a mark's word -> what it marks)."""
    colours = " ".join(f"<span style='color:{CLASS_COLOURS[index % len(CLASS_COLOURS)]}'>■ {html.escape(name)}</span>"
                       for index, name in enumerate(label_names))
    said = "; ".join(f"▲ {html.escape(word)}: {html.escape(meaning)}" for word, meaning in marks.items())
    return f"<div class='dp-what-if-legend' style='font-size:85%'>Colour: DP's answer there ({colours}). {said}.</div>"


def class_probabilities(decision: InstanceDecision, label_names: tuple[str, ...]) -> dict[str, float]:
    return {name: float(p) for name, p in zip(label_names, decision.class_probs)}


CANDIDATE_PLOTS = ("tokens after the input", "active length", "pool prompt")


def candidate_frames(decision: InstanceDecision) -> list[pd.DataFrame]:
    """Probability of every candidate, one frame per factor (empty when DP does not choose that factor).

    Candidates are named, not numbered, so the plots draw one wide bar per candidate in the frame's order."""
    values = {"tokens after the input": [(str(p), w) for p, w in enumerate(decision.position_probs or [])],
              "active length": [(str(n), w) for n, w in enumerate(decision.length_probs or [], start=1)],
              "pool prompt": [(f"prompt {k}", w) for k, w in enumerate(decision.pool_weights, start=1)]
              if len(decision.pool_weights) > 1 else []}
    return [pd.DataFrame([{"candidate": c, "probability": v} for c, v in values[name]],
                         columns=["candidate", "probability"]) for name in CANDIDATE_PLOTS]


def choice_counts(frame: pd.DataFrame, split_by: str, choice: str, candidates: range) -> pd.DataFrame:
    """Items per candidate and group, for a stacked bar plot: every candidate listed in order (an empty bar where
    DP never chose it) and named, so the plot draws one wide bar per candidate; groups in their category order,
    which the legend keeps."""
    counts = frame.groupby([split_by, choice], observed=True).size().reset_index(name="items")
    unused = sorted(set(candidates) - set(counts[choice]))
    if unused and len(counts):  # a zero row in the first group: no visible bar, but the candidate keeps its slot
        groups = counts[split_by]
        counts = pd.concat([counts, pd.DataFrame({
            split_by: pd.Categorical([groups.iloc[0]] * len(unused), categories=groups.cat.categories),
            choice: unused, "items": 0})])
    counts = counts.sort_values([split_by, choice], kind="stable")  # groups in category order, candidates numeric
    return counts.astype({split_by: str, choice: str}).reset_index(drop=True)


DEEP_PLACE = ("A deep prompt sits in every layer, outside the sentence: its place only moves where the input's "
              "positions start.")


def place_note(backbone, deep: bool = False) -> str:
    """What a prompt's place means where a student looks at one, in one sentence: on the backbone's family for an
    input-level prompt, for a deep prompt what its place moves."""
    return f"*{DEEP_PLACE if deep else backbone.family.place_in_brief}*"


def scores_table(comparison, sources: tuple[str, str], answer: str, metric: str) -> pd.DataFrame:
    """Both methods' dev scores, DP − fixed paired over the same items, and the one-answer bar, each with its 95 %
    interval (``comparison``: a ``dp_core.comparison.DevComparison``; ``metric``: what the score is)."""
    rows = [(sources[0], comparison.fixed, ""), (sources[1], comparison.dp, ""),
            ("DP − fixed (paired, same items)", comparison.difference, "+"),
            (f"always “{answer}” (the best single answer on these items)", comparison.constant, "")]
    return pd.DataFrame([{"method": name, f"score ({metric})": f"{score.value:{sign}.3f}",
                          "95 % interval": f"{score.low:{sign}.3f} – {score.high:{sign}.3f}", "items": comparison.items}
                         for name, score, sign in rows])


def error_html(message: str) -> str:
    return f"<div style='color:#b91c1c'>{html.escape(message)}</div>"


def candidate_colours(count: int) -> dict[str, str]:
    """Blue (every token before the input) to orange (every token after it), for 0..count-1 tokens after."""
    start, end = (37, 99, 235), (234, 88, 12)
    def mix(t: float) -> str:
        return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(start, end))
    return {str(p): mix(p / max(1, count - 1)) for p in range(count)}


def empty_what_if() -> pd.DataFrame:
    return pd.DataFrame(columns=["candidate", "class", "probability"])


def counterfactual_frame(factor: str, counterfactual: list[list[float]], marks: dict[int, str],
                         label_names: tuple[str, ...]) -> pd.DataFrame:
    """The probability of every class with the prompt forced to each candidate, the marked candidates named on the
    axis as on the strips (e.g. "5 · DP", "0 · fixed"), in candidate order."""
    names = candidate_names(factor, len(counterfactual))
    named = [name + (f" · {marks[c]}" if c in marks else "") for c, name in enumerate(names)]
    return pd.DataFrame([{"candidate": name, "class": label, "probability": float(p)}
                         for name, row in zip(named, counterfactual) for label, p in zip(label_names, row)],
                        columns=["candidate", "class", "probability"])


CALLED = {"position": "place ", "length": "length ", "pool": ""}  # how a candidate is named in a table cell


def choice_summary(stats: dict[str, ChoiceStatistics]) -> pd.DataFrame:
    """One short row per choice: how sure DP is, how often it makes the same choice, how many answers the choice
    changes, and what DP's own choices score against the best single one."""
    rows = []
    for factor, s in stats.items():
        sure, no_preference = how_sure(s)
        best = s.best_single
        rows.append({"choice": WHAT[factor],
                     "how sure (median)": f"{sure:.0%} (no preference: {no_preference:.0%})",
                     "same choice for": f"{same_choice_share(s):.0%}",
                     "answers it changes": f"{s.changes_prediction or 0:.0%}",
                     "DP's choices score": "–" if s.own_score is None else f"{s.own_score:.3f}",
                     "best single choice": "–" if best is None else
                     f"{s.single_scores[best]:.3f} at {CALLED[factor]}{s.candidates[best]}"})
    return pd.DataFrame(rows)


def choice_table(stats: dict[str, ChoiceStatistics], intervals: dict[tuple[str, str], tuple[float, float]],
                 held_out_picks: dict[str, int] | None = None) -> pd.DataFrame:
    """The fine print, one row per factor: every figure of how decided DP is, scores with their 95 % interval.
    ``held_out_picks``: per factor, the single candidate that scored best on the held-out training items the
    checkpoint was selected on (an honest task-level rival: picked without dev), when it was recorded."""
    def cell(factor: str, name: str, value: float | None) -> str:
        if value is None:
            return "–"
        low, high = intervals.get((factor, name), (value, value))
        return f"{value:.3f} ({low:.3f} – {high:.3f})"

    rows = []
    for factor, s in stats.items():
        best = s.best_single
        layouts = "–" if s.layout_commitment is None else \
            f"{s.layout_commitment:.2f} (no preference: {s.layout_no_preference:.2f})"
        rows.append({"factor": factor, "how sure: median top probability": round(s.commitment, 2),
                     "how sure, over distinct layouts": layouts,
                     "entropy (0 sure, 1 uniform)": round(s.entropy, 2),
                     "same choice for (share at the commonest)": round(s.collapse, 2),
                     "answers the choice changes": round(s.changes_prediction or 0.0, 2),
                     "score, DP's own choices": cell(factor, "own", s.own_score),
                     "best single choice (picked on dev)": cell(factor, "best single", None if best is None else
                                                               s.single_scores[best]) + f" at {s.candidates[best]}",
                     "best choice per item (upper bound)": cell(factor, "oracle", s.oracle_score)})
        picked = (held_out_picks or {}).get(factor)
        if picked is not None and s.single_scores is not None:
            rows[-1]["best single choice (picked on held-out training items)"] = \
                f"{s.single_scores[picked]:.3f} at {s.candidates[picked]}"
    return pd.DataFrame(rows)
