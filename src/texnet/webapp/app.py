"""The routes of `texnet serve`: a JSON API over texnet's Python API, and the page that uses it.

Everything the server writes goes under its data folder, in names it makes itself (random
hex for results, a slug for models): no name from a request ever becomes a path. Uploads are
limited in bytes and pixels; heavy work runs in worker threads, so several tabs stay responsive.
"""

from __future__ import annotations

import io
import re
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import TexnetError
from ..image_io import load_image, resize_to_fit
from ..model_files import builtin_models, read_config
from ..sampling import TextureGenerator, tile_preview
from ..stylizer import Stylizer
from .jobs import Busy, Cancelled, Job, Jobs

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD_BYTES = 20_000_000
MAX_UPLOAD_PIXELS = 16_000_000
MAX_SAMPLE_SIDE = 2048
MAX_SAMPLES = 8
# 13 to 23 s a photo on 2 cores (0.25 s a step in native bfloat16, 0.45 s without): a request, not a job
MAX_REFINE_STEPS = 50
RESULT_NAME = re.compile(r"^[0-9a-f]{32}\.(png|jpg)$")


class Models:
    """The models the page can use: built-in ones, folders given on the command line, and the
    ones trained in the app (under the data folder). Each has an id such as builtin/brick."""

    def __init__(self, trained: Path, extra: list[Path]):
        self.trained, self.extra = trained, extra
        self.loaded: dict[str, TextureGenerator | Stylizer] = {}

    def folders(self) -> dict[str, Path]:
        found = {f"builtin/{name}": folder for name, folder in builtin_models().items()}
        found.update({f"folder/{index}": folder for index, folder in enumerate(self.extra)})
        if self.trained.is_dir():
            found.update({f"trained/{folder.name}": folder for folder in sorted(self.trained.iterdir())
                          if (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()})
        return found

    def describe(self) -> list[dict]:
        listing = []
        for model_id, folder in self.folders().items():
            try:
                config = read_config(folder)
            except TexnetError:
                continue  # a broken folder given on the command line is left out, not fatal
            styles = config.get("training", {}).get("styles", [])
            listing.append({"id": model_id, "name": folder.name, "kind": config["kind"],
                            "styles": styles if len(styles) > 1 else [],
                            "thumbnail": f"/api/models/{model_id}/thumbnail"})
        return listing

    def folder(self, model_id: str) -> Path:
        folders = self.folders()
        if model_id not in folders:
            raise TexnetError(f"no model {model_id!r}")
        return folders[model_id]

    def get(self, model_id: str, kind: str | None = None):
        """The loaded model (of `kind`, if given)."""
        folder = self.folder(model_id)
        kind = kind or read_config(folder)["kind"]
        if model_id not in self.loaded:
            self.loaded[model_id] = (TextureGenerator if kind == "texture" else Stylizer).from_pretrained(folder)
        model = self.loaded[model_id]
        if model.kind != kind:
            raise TexnetError(f"{model_id} is a {model.kind} model, not a {kind} model")
        return model


class Server:
    """What the routes share: the data folder, the models, the jobs, the VGG descriptor."""

    def __init__(self, data: Path, extra_models: list[Path]):
        self.data = data
        self.results = data / "results"
        self.examples = data / "examples"
        for folder in (self.results, self.examples, data / "models"):
            folder.mkdir(parents=True, exist_ok=True)
        self.models = Models(data / "models", extra_models)
        self.jobs = Jobs()
        self.descriptor = None
        self.style_descriptor = None
        self.thumbnails: dict[str, bytes] = {}

    def vgg(self):
        if self.descriptor is None:
            from ..quality import evaluation_descriptor

            self.descriptor = evaluation_descriptor()
        return self.descriptor

    def refine_vgg(self):
        """VGG with the content layer too, for refining style nets (the texture jobs' lacks it)."""
        if self.style_descriptor is None:
            from ..refine import refine_descriptor

            self.style_descriptor = refine_descriptor()
        return self.style_descriptor

    def save_result(self, image: Image.Image, suffix: str = "png") -> str:
        name = f"{uuid.uuid4().hex}.{suffix}"
        image.save(self.results / name, quality=92)
        return f"/results/{name}"


def form_number(form, name: str, default: float, low: float, high: float, whole: bool = True) -> float:
    text = form.get(name)
    if text in (None, ""):
        return default
    try:
        value = int(text) if whole else float(text)
    except (TypeError, ValueError):
        raise TexnetError(f"{name} must be a {'whole ' if whole else ''}number, not {text!r}") from None
    if not low <= value <= high:
        raise TexnetError(f"{name} must be between {low:g} and {high:g}, not {value:g}")
    return value


async def read_form(request: Request):
    """The request's fields, uploads limited to MAX_UPLOAD_BYTES."""
    if int(request.headers.get("content-length") or 0) > MAX_UPLOAD_BYTES + 100_000:  # refused unread
        raise HTTPException(413, f"the upload is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB")
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        if not isinstance(body, dict):
            raise TexnetError("expected a JSON object")
        return {key: str(value) for key, value in body.items()}
    try:
        return await request.form(max_files=1, max_fields=32, max_part_size=MAX_UPLOAD_BYTES)
    except Exception as error:  # the multipart parser's own exception types
        raise TexnetError(f"the upload could not be read ({error})") from None


async def uploaded_image(form, field: str) -> Image.Image:
    upload = form.get(field)
    if upload is None or isinstance(upload, str):
        raise TexnetError(f"choose an image to upload ({field})")
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise TexnetError(f"the upload is larger than {MAX_UPLOAD_BYTES // 1_000_000} MB")
    name = Path(upload.filename or "upload").name
    try:
        return load_image(data, MAX_UPLOAD_PIXELS)
    except TexnetError as error:
        raise TexnetError(f"{name}: {str(error).split(': ', 1)[-1]}") from None


def slug(text: str) -> str:
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]
    return cleaned or "texture"


def create_app(data: Path, extra_models: list[Path] = ()) -> Starlette:
    server = Server(Path(data), list(extra_models))

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def models(request: Request) -> Response:
        busy = server.jobs.running()
        return JSONResponse({"models": server.models.describe(), "busy": busy.as_dict() if busy else None})

    async def thumbnail(request: Request) -> Response:
        model_id = f"{request.path_params['kind']}/{request.path_params['name']}"
        if model_id not in server.thumbnails:
            server.thumbnails[model_id] = await run_in_threadpool(make_thumbnail, server, model_id)
        return Response(server.thumbnails[model_id], media_type="image/png",
                        headers={"Cache-Control": "max-age=3600"})

    async def sample(request: Request) -> Response:
        form = await read_form(request)
        model = server.models.get(str(form.get("model", "")), "texture")
        width = int(form_number(form, "width", 256, 16, MAX_SAMPLE_SIDE))
        height = int(form_number(form, "height", 256, 16, MAX_SAMPLE_SIDE))
        count = int(form_number(form, "count", 1, 1, MAX_SAMPLES))
        seed = int(form_number(form, "seed", 0, 0, 2 ** 31))
        start = time.perf_counter()
        images = await run_in_threadpool(model.sample, count, (height, width), seed)
        milliseconds = (time.perf_counter() - start) * 1000
        return JSONResponse({"milliseconds": milliseconds, "images": [
            {"url": server.save_result(image), "tiled": server.save_result(tile_preview(image, 3)),
             "width": image.width, "height": image.height} for image in images]})

    async def stylize(request: Request) -> Response:
        form = await read_form(request)
        model = server.models.get(str(form.get("model", "")), "style")
        photo = await uploaded_image(form, "photo")
        max_size = int(form_number(form, "max_size", 1024, 32, 4096))
        options = {"strength": form_number(form, "strength", 1.0, 0, 1, whole=False),
                   "preserve_colors": form.get("preserve_colors") in ("on", "true", "1"),
                   "stroke_scale": form_number(form, "stroke_scale", 1.0, 0.25, 4, whole=False),
                   "style": form.get("style") or None}
        refine = int(form_number(form, "refine", 0, 0, MAX_REFINE_STEPS))
        photo = resize_to_fit(photo, max_size)
        start = time.perf_counter()
        if refine:  # fitted to this photo first (texnet.refine): seconds, not milliseconds
            model = await run_in_threadpool(lambda: model.refined(
                photo, refine, style=options["style"], stroke_scale=options["stroke_scale"],
                descriptor=server.refine_vgg()))
        result = await run_in_threadpool(lambda: model.stylize(photo, **options))
        milliseconds = (time.perf_counter() - start) * 1000
        return JSONResponse({"milliseconds": milliseconds, "before": server.save_result(photo, "jpg"),
                             "after": server.save_result(result), "width": result.width, "height": result.height})

    async def train(request: Request) -> Response:
        form = await read_form(request)
        example = await uploaded_image(form, "example")
        iterations = int(form_number(form, "iterations", 900, 1, 5000))
        size = int(form_number(form, "size", 256, 64, 256))
        name = slug(str(form.get("name") or "texture"))
        folder = unique_folder(server.data / "models", name)
        example_path = server.examples / f"{folder.name}.png"
        job = server.jobs.start("train", iterations, lambda job: train_job(server, job, example, example_path,
                                                                         folder, iterations, size))
        return JSONResponse(job.as_dict(), status_code=202)

    async def gatys(request: Request) -> Response:
        form = await read_form(request)
        model_id = str(form.get("model", ""))
        if not model_id.startswith("trained/"):
            raise TexnetError("the Gatys comparison runs on models trained here (their example is kept)")
        example_path = server.examples / f"{model_id.split('/', 1)[1]}.png"
        if not example_path.is_file():
            raise TexnetError(f"the example of {model_id} is not kept")
        model = server.models.get(model_id, "texture")
        iterations = int(form_number(form, "iterations", 150, 1, 1000))
        job = server.jobs.start("gatys", iterations, lambda job: gatys_job(server, job, model, example_path,
                                                                         iterations))
        return JSONResponse(job.as_dict(), status_code=202)

    async def job_state(request: Request) -> Response:
        return JSONResponse(server.jobs.get(request.path_params["job"]).as_dict())

    async def cancel(request: Request) -> Response:
        job = server.jobs.get(request.path_params["job"])
        job.cancel_requested = True
        return JSONResponse(job.as_dict())

    async def result(request: Request) -> Response:
        name = request.path_params["name"]
        if not RESULT_NAME.match(name) or not (server.results / name).is_file():
            raise HTTPException(404, "no such result")
        disposition = "attachment" if request.query_params.get("download") else "inline"
        return FileResponse(server.results / name, headers={
            "Content-Disposition": f'{disposition}; filename="texnet-{name}"'})

    async def texnet_error(request: Request, error: TexnetError) -> Response:
        return JSONResponse({"error": str(error)}, status_code=400)

    async def busy(request: Request, error: Busy) -> Response:
        return JSONResponse({"error": str(error)}, status_code=409)

    async def http_error(request: Request, error: HTTPException) -> Response:
        return JSONResponse({"error": error.detail}, status_code=error.status_code)

    routes = [
        Route("/", index),
        Route("/api/models", models),
        Route("/api/models/{kind}/{name}/thumbnail", thumbnail),
        Route("/api/sample", sample, methods=["POST"]),
        Route("/api/stylize", stylize, methods=["POST"]),
        Route("/api/train", train, methods=["POST"]),
        Route("/api/gatys", gatys, methods=["POST"]),
        Route("/api/jobs/{job}", job_state),
        Route("/api/jobs/{job}/cancel", cancel, methods=["POST"]),
        Route("/results/{name}", result),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={TexnetError: texnet_error, Busy: busy,
                                                        HTTPException: http_error})


def make_thumbnail(server: Server, model_id: str) -> bytes:
    """A texture's sample, or a style's result on a fixed pattern of colour bands, 128 px."""
    model = server.models.get(model_id)
    if model.kind == "texture":
        image = model.sample(1, 128)[0]
    else:
        image = model.stylize(thumbnail_scene(), style=(model.style_names()[0] if model.config.styles > 1 else None))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def thumbnail_scene() -> Image.Image:
    """Soft coloured shapes on a gradient: enough structure for a style to show its strokes."""
    y, x = np.mgrid[0:128, 0:128] / 127.0
    red = 0.5 + 0.4 * np.sin(6 * x) * np.cos(4 * y)
    green = 0.3 + 0.5 * y
    blue = 0.7 - 0.5 * ((x - 0.5) ** 2 + (y - 0.4) ** 2 < 0.06)
    return Image.fromarray((np.clip(np.stack([red, green, blue], -1), 0, 1) * 255).astype(np.uint8))


def unique_folder(parent: Path, name: str) -> Path:
    candidate, number = parent / name, 2
    while candidate.exists():
        candidate, number = parent / f"{name}-{number}", number + 1
    return candidate


def train_job(server: Server, job: Job, example: Image.Image, example_path: Path, folder: Path,
              iterations: int, size: int) -> dict:
    """Train a texture model into the data folder; previews of the net as it learns."""
    import shutil

    from ..training import PRESETS, scaled_to, train_texture

    resize_to_fit(example, 256).save(example_path)
    config = replace(scaled_to(PRESETS["cpu"], iterations), size=size)
    every = max(1, iterations // 10)

    def on_step(trainer) -> None:
        job.step(trainer.iteration, trainer.history[-1])
        if trainer.iteration % every == 0 or trainer.iteration == iterations:
            preview = TextureGenerator(trainer.net).sample(1, 128, backend="torch")[0]
            job.previews.append(server.save_result(preview))

    try:
        train_texture(example, folder, config, descriptor=server.vgg(), progress=False, on_step=on_step)
    except (Cancelled, TexnetError, KeyboardInterrupt):
        shutil.rmtree(folder, ignore_errors=True)  # no half-trained model in the list
        example_path.unlink(missing_ok=True)
        raise
    return {"model": f"trained/{folder.name}", "name": folder.name}


def gatys_job(server: Server, job: Job, model: TextureGenerator, example_path: Path, iterations: int) -> dict:
    """The Gatys baseline on the model's example, beside one feed-forward sample, both timed."""
    from ..image_io import image_to_tensor, tensor_to_image
    from ..optimize import OptimizeConfig, synthesize

    example = image_to_tensor(load_image(example_path))
    start = time.perf_counter()
    result = synthesize(server.vgg(), example, (256, 256), OptimizeConfig(iters=iterations, progress=False),
                        on_step=lambda iteration, loss, image: job.step(iteration, loss))
    gatys_seconds = time.perf_counter() - start
    start = time.perf_counter()
    sample = model.sample(1, 256)[0]
    sample_seconds = time.perf_counter() - start
    return {"gatys": server.save_result(tensor_to_image(result.image)), "gatys_seconds": gatys_seconds,
            "sample": server.save_result(sample), "sample_seconds": sample_seconds,
            "example": server.save_result(load_image(example_path))}
