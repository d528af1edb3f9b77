"""Draws the Learn tab's figures into assets/ (how_dp_works.png, places_by_family.png):  python -m app.figure"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .views import COLOURS

OUTPUT = Path(__file__).resolve().parent.parent / "assets" / "how_dp_works.png"
FAMILY_OUTPUT = OUTPUT.with_name("places_by_family.png")
WORDS = ["[CLS]", "the", "cat", "sat", "[SEP]", "a", "cat", "sat", "[SEP]"]


def chips(draw: ImageDraw.ImageDraw, font, x: int, y: int, tokens: list[tuple[str, str]]) -> None:
    for text, kind in tokens:
        width = int(draw.textlength(text, font=font)) + 14
        fill = COLOURS[kind]
        outline = "#9ca3af" if kind in ("input", "inactive") else fill
        draw.rounded_rectangle([x, y, x + width, y + 30], radius=6, fill=fill, outline=outline, width=2)
        colour = "#ffffff" if kind in ("prompt-before", "prompt-after") else ("#9ca3af" if kind == "inactive" else "#111827")
        draw.text((x + 7, y + 6), text, font=font, fill=colour)
        x += width + 4


def draw(path: Path = OUTPUT) -> Path:
    image = Image.new("RGB", (1100, 520), "white")
    draw_ = ImageDraw.Draw(image)
    font, title = ImageFont.load_default(size=16), ImageFont.load_default(size=20)
    words = [(w, "input") for w in WORDS]
    prompt = lambda names, kind: [(n, kind) for n in names]  # noqa: E731

    draw_.text((20, 15), "Prompt tuning: the same learned tokens before every input", font=title, fill="#111827")
    chips(draw_, font, 20, 50, words[:1] + prompt(["P1", "P2", "P3", "P4", "P5", "P6"], "prompt-before") + words[1:])

    draw_.text((20, 110), "P-tuning v2: learned keys/values in every layer, the same for every input", font=title,
               fill="#111827")
    for layer in range(3):
        y = 145 + layer * 36
        draw_.text((20, y + 6), f"layer {layer + 1}", font=font, fill="#6b7280")
        chips(draw_, font, 100, y, prompt(["K/V 1", "K/V 2", "K/V 3"], "prompt-before") + words)

    draw_.text((20, 270), "Dynamic Prompting: each input chooses where, how long and which mix", font=title,
               fill="#111827")
    chosen = (words[:1] + prompt(["P4", "P5"], "prompt-before") + prompt(["P6"], "inactive") + words[1:-1]
              + prompt(["P1", "P2", "P3"], "prompt-after") + words[-1:])
    chips(draw_, font, 20, 305, chosen)
    notes = [
        "A small network reads the frozen encoder's summary of the input and picks:",
        "  position - 3 of 6 prompt tokens go after the input (orange), the rest before it (blue)",
        "  length   - only 5 of 6 are used; the grey one is switched off and has no effect at all",
        "  pool     - the prompt vectors are a weighted mix of a pool of prompts",
        "Input-level prompt tokens are read like words, so their place changes their position embedding.",
        "Deep (key/value) prompts have no place of their own: moving them moves only where the input starts.",
    ]
    for line, text in enumerate(notes):
        draw_.text((20, 355 + line * 25), text, font=font, fill="#374151")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def draw_families(path: Path = FAMILY_OUTPUT) -> Path:
    """Who can read whom, per family: one attention grid each over a prompt before the input, three input tokens
    and a prompt after it (a filled cell: the row's token reads the column's)."""
    sequence = [("P before", "prompt-before"), ("x1", "input"), ("x2", "input"), ("x3", "input"),
                ("P after", "prompt-after")]
    panels = [("Encoder (BERT-like)", "bidirectional", "everyone reads everyone:\nthe place is only a position number"),
              ("Decoder (Llama, GPT-2)", "causal", "a prompt before cannot read the input;\none after reads all of it"),
              ("T5 encoder", "bidirectional", "everyone reads everyone;\nthe distance is what changes")]
    cell, left, top = 34, 110, 90
    image = Image.new("RGB", (3 * (left + 5 * cell + 40), top + 5 * cell + 110), "white")
    draw_ = ImageDraw.Draw(image)
    font, title = ImageFont.load_default(size=14), ImageFont.load_default(size=18)
    for panel, (name, attention, note) in enumerate(panels):
        x0 = panel * (left + 5 * cell + 40) + 10
        draw_.text((x0, 10), name, font=title, fill="#111827")
        draw_.text((x0 + left, top - 44), "reads:", font=font, fill="#6b7280")
        for column, short in enumerate(("P", "x1", "x2", "x3", "P")):
            kind = sequence[column][1]
            draw_.text((x0 + left + column * cell + 8, top - 22), short, font=font,
                       fill=COLOURS[kind] if kind != "input" else "#111827")
        for row, (label, kind) in enumerate(sequence):
            colour = COLOURS[kind] if kind != "input" else "#111827"
            draw_.text((x0, top + row * cell + 9), label, font=font, fill=colour)
            for column in range(len(sequence)):
                visible = attention == "bidirectional" or column <= row
                box = [x0 + left + column * cell, top + row * cell, x0 + left + (column + 1) * cell - 3,
                       top + (row + 1) * cell - 3]
                draw_.rectangle(box, fill="#1f2937" if visible else "#f3f4f6", outline="#d1d5db")
        for line, text in enumerate(note.split("\n")):
            draw_.text((x0, top + 5 * cell + 15 + line * 20), text, font=font, fill="#374151")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


if __name__ == "__main__":
    print(draw())
    print(draw_families())
