"""Flicker of stylized video: frame-by-frame stylization with a style model against the same
model fine-tuned with the frame-difference term (issue 13).

The clip is a 48-frame pan across a content-test photo with sensor noise and a tone (what a
handheld clip of a still scene looks like), 320x240 at 24 fps. Each model stylizes it through
`texnet.video.stylize_video`; flicker = mean output change between frames / mean input change
(lower is steadier). The style is scored on the middle frame by texnet.quality (held-out Gram
loss to the painting, relu4_2 and relu3_2 content distances), so steadiness is not bought by
dropping the style.

    python benchmarks/video_flicker.py starry-night runs/starry-temporal --painting starry-night
Writes benchmarks/out/video_flicker.md, the stylized clips beside it, and video-flicker.jpg (frames 23 to
25 of each model's clip, one row per model).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
OUT = HERE / "out" / "video"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="style models (built-in names or folders)")
    parser.add_argument("--painting", default="starry-night", help="the painting the models were trained on")
    parser.add_argument("--photo", default="kingfisher", help="the content-test photo the clip pans across")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from PIL import Image

    from measure import machine_description, markdown_table, pan_clip, save_figure, write_report
    from texnet.image_io import image_to_tensor, load_image
    from texnet.quality import evaluate_stylization, style_evaluation_descriptor
    from texnet.stylizer import Stylizer
    from texnet.video import frames_of, stylize_video

    OUT.mkdir(parents=True, exist_ok=True)
    clip = pan_clip(DATA / "content-test" / f"{args.photo}.jpg", OUT / "clip.mp4", frames=48, fps=24, size=(320, 240))
    middle = frames_of(clip)[24]
    painting = load_image(DATA / "styles" / f"{args.painting}.jpg")
    descriptor = style_evaluation_descriptor()
    rows, figure_rows = [], []
    for name in args.models:
        model = Stylizer.from_pretrained(name)
        target = OUT / f"{Path(name).name}.mp4"
        report = stylize_video(clip, target, model.stylize, progress=False)
        frames = frames_of(target)
        scores = evaluate_stylization(descriptor, frames[24], middle, painting)
        figure_rows.append((name, [image_to_tensor(Image.fromarray(frame)) for frame in frames[23:26]]))
        rows.append([name, f"{report.flicker:.2f}", f"{scores.held_out_gram:.3g}", f"{scores.content:.3g}",
                     f"{scores.content_held_out:.3g}", "yes" if report.audio else "no"])
    table = markdown_table(["model", "flicker", "held-out style Gram (frame 24)", "content relu4_2",
                            "content relu3_2", "sound kept"], rows)
    write_report("video_flicker.md", f"Machine: {machine_description()}\n\n{table}\n")
    save_figure(["frame 23", "frame 24", "frame 25"], figure_rows, HERE / "out" / "video-flicker.jpg", tile=320)


if __name__ == "__main__":
    main()
