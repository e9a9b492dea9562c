"""A local web app to try the enhancers: upload or pick a photo, choose a model, compare, download.

[`build_app`][semprior.app.build_app] returns a [Gradio](https://www.gradio.app) ``Blocks`` app; ``semprior
app`` serves it on ``127.0.0.1`` (this computer only). The enhancement is the same code path as
``semprior enhance``: the model is built by `semprior.cli._models.build_models`, the upload is read
with [`read_image`][semprior.data.io.read_image] (EXIF orientation applied), enhanced whole with
[`enhance_image`][semprior.engine.tiling.enhance_image] and written with
[`write_image`][semprior.data.io.write_image] as an 8-bit PNG, so the downloaded file has the same
pixels as ``semprior enhance photo.jpg -o out/ --model NAME``.

Uploads are refused above [`MAX_UPLOAD_MB`][semprior.app.MAX_UPLOAD_MB] megabytes (by the server, before
the file is stored) and above [`MAX_MEGAPIXELS`][semprior.app.MAX_MEGAPIXELS] pixels (read from the
file's header, before it is decoded), each with a message that says what to do instead.

Nothing is fetched from the network: Gradio's usage analytics are switched off before it is
imported, the page uses the browser's own fonts, and no share link is made.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_MEGAPIXELS",
    "MAX_UPLOAD_MB",
    "SAMPLES",
    "app_models",
    "build_app",
    "check_upload",
    "enhance_file",
    "launch",
    "write_samples",
]

#: largest upload accepted, in megabytes (decimal, as browsers show file sizes)
MAX_UPLOAD_MB = 25
#: largest image accepted, in millions of pixels (12 MP: a phone photo; one CPU takes seconds to a minute)
MAX_MEGAPIXELS = 12.0
#: bundled sample photos (scikit-image's, made dark by
#: [`synthesize_low_light`][semprior.data.synthesis.synthesize_low_light])
SAMPLES = ("coffee", "chelsea", "astronaut")


def app_models() -> list[str]:
    """The models the app offers: learned models with weights shipped in semprior, then the classical ones."""
    from semprior.models.registry import get_model_entry, list_models

    names = list_models()
    learned = [n for n in names if get_model_entry(n).training_loss is not None and get_model_entry(n).shipped_tags]
    classical = [n for n in names if get_model_entry(n).training_loss is None and n != "identity"]
    return learned + classical


def check_upload(
    path: str | os.PathLike, max_megapixels: float = MAX_MEGAPIXELS, max_upload_mb: float = MAX_UPLOAD_MB
) -> None:
    """Raise ``ValueError`` with one readable line when ``path`` is too big (bytes or pixels) or not an image."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    size_mb = path.stat().st_size / 1e6
    if size_mb > max_upload_mb:
        raise ValueError(
            f"the file is {size_mb:.1f} MB; the app takes up to {max_upload_mb:g} MB. "
            "Use `semprior enhance` for big files (it has no size limit)."
        )
    try:
        with Image.open(path) as im:  # reads the header only
            w, h = im.size
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path.name} is not an image file PIL can read ({exc})") from exc
    mp = w * h / 1e6
    if mp > max_megapixels:
        raise ValueError(
            f"the image is {w}×{h} = {mp:.1f} megapixels; the app takes up to {max_megapixels:g}. "
            "Resize it, or use `semprior enhance` (tiles, any size)."
        )


def _build_model(name: str, device: str = "cpu") -> Any:
    from semprior.cli._models import build_models

    args = argparse.Namespace(model=name, checkpoint=None, prior=None, weights_dir=None, device=device, dtype="auto")
    ((_, model),) = build_models(args).items()
    return model


def enhance_file(model: Any, src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """``semprior enhance``'s steps for one file, whole image: read (EXIF-upright), enhance, keep a dark photo
    from coming out darker ([`keep_brightness`][semprior.engine.brightness.keep_brightness]), write a PNG."""
    from semprior.data.io import read_image, write_image
    from semprior.engine.photo import enhance

    write_image(dst, enhance(read_image(src), model))
    return Path(dst)


def write_samples(folder: str | os.PathLike) -> list[Path]:
    """Write the dark sample photos as PNGs into ``folder`` (needs scikit-image: the ``demo`` extra)."""
    import torch

    from semprior.data.io import write_image
    from semprior.data.samples import default_clean_images
    from semprior.data.synthesis import synthesize_low_light

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, img in default_clean_images(SAMPLES).items():
        g = torch.Generator().manual_seed(0)
        low = synthesize_low_light(img[None], generator=g)[0]
        path = folder / f"{name}_dark.png"
        write_image(path, low)
        out.append(path)
    return out


def _gradio() -> Any:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no usage reports or version checks
    from semprior._optional import require

    return require("gradio", extra="app", purpose="the web app (semprior app)")


def build_app(
    models: list[str] | None = None,
    device: str = "cpu",
    workdir: str | os.PathLike | None = None,
    max_megapixels: float = MAX_MEGAPIXELS,
    max_upload_mb: float = MAX_UPLOAD_MB,
) -> Any:
    """The Gradio ``Blocks`` app (not started: call ``.launch()`` or use [`launch`][semprior.app.launch]).

    Args:
        models: names offered in the menu; default [`app_models`][semprior.app.app_models]() (first = default).
        device: where models run (``"cpu"``, ``"cuda"`` or ``"auto"``).
        workdir: where the samples and results are written; a new temporary folder when ``None``.
        max_megapixels: images above this many pixels are refused.
        max_upload_mb: files above this many megabytes are refused (also give it to ``launch(max_file_size=)``,
            which refuses them before they are stored; [`launch`][semprior.app.launch] does).
    """
    gr = _gradio()
    models = models or app_models()
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="semprior-app-"))
    samples = write_samples(work / "samples")
    loaded: dict[str, Any] = {}

    def run(path: str | None, name: str):
        if not path:
            raise gr.Error("Upload a photo or pick a sample first.")
        try:
            check_upload(path, max_megapixels=max_megapixels, max_upload_mb=max_upload_mb)
            if name not in loaded:
                loaded.clear()  # one model in memory at a time
                loaded[name] = _build_model(name, device)
            dst = Path(tempfile.mkdtemp(dir=work)) / f"{Path(path).stem}_{name}.png"
            enhance_file(loaded[name], path, dst)
        except (ValueError, OSError, RuntimeError, ImportError) as exc:
            raise gr.Error(str(exc)) from exc
        before = Path(tempfile.mkdtemp(dir=work)) / f"{Path(path).stem}.png"
        from semprior.data.io import read_image, write_image

        write_image(before, read_image(path))  # upright, as the model saw it
        return (str(before), str(dst)), gr.DownloadButton(value=str(dst), visible=True, label=f"Download {dst.name}")

    with gr.Blocks(title="semprior: low-light enhancement") as demo:
        gr.Markdown(
            "## semprior: low-light enhancement\n"
            f"Upload a dark photo (up to {max_upload_mb:g} MB and {max_megapixels:g} megapixels) or pick a "
            "sample, choose a model, press **Enhance**. Everything runs on this computer."
        )
        with gr.Row():
            with gr.Column(scale=1):
                inp = gr.Image(
                    type="filepath", image_mode=None, label="Photo", sources=["upload"], height=320, elem_id="photo"
                )  # image_mode=None: the uploaded file as it is, never re-encoded
                gr.Examples(
                    [[str(p)] for p in samples], inputs=[inp], label="Samples (made dark from scikit-image's photos)"
                )
                model = gr.Dropdown(
                    models,
                    value=models[0],
                    label="Model",
                    elem_id="model",
                    info="deepspg and retinexformer: trained on LOL-v1 (shipped); the rest: classical",
                )
                go = gr.Button("Enhance", variant="primary", elem_id="enhance")
            with gr.Column(scale=2):
                slider = gr.ImageSlider(
                    label="Before / after (drag the slider)",
                    type="filepath",
                    format="png",
                    interactive=False,
                    elem_id="result",
                    max_height=600,
                )
                dl = gr.DownloadButton("Download", visible=False, elem_id="download")
        go.click(run, inputs=[inp, model], outputs=[slider, dl], concurrency_limit=1)
    demo.semprior_workdir = work
    return demo


def launch(
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str = "cpu",
    models: list[str] | None = None,
    max_megapixels: float = MAX_MEGAPIXELS,
    max_upload_mb: float = MAX_UPLOAD_MB,
    open_browser: bool = False,
) -> None:
    """Build the app and serve it until Ctrl-C (``host="0.0.0.0"`` opens it to the network: a deliberate choice)."""
    gr = _gradio()
    demo = build_app(models=models, device=device, max_megapixels=max_megapixels, max_upload_mb=max_upload_mb)
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    demo.queue(default_concurrency_limit=1).launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=open_browser,
        theme=theme,
        max_file_size=int(max_upload_mb * 1e6),
        allowed_paths=[str(demo.semprior_workdir)],
        footer_links=[],
        ssr_mode=False,
        mcp_server=False,
        show_error=True,
    )
