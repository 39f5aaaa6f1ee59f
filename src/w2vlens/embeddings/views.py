"""A view: which representation of the frames a run reads from one checkpoint of the pair, the CNN
feature encoder's output or one or more Transformer layers. Parsed once from its settings (a `model`
config: name, checkpoint, view, layer), it names the store arrays it reads, and the views of a run
together name what each checkpoint's store must keep and the run's `layer` tag."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from w2vlens.embeddings.extract import checkpoint_arrays
from w2vlens.embeddings.models import Checkpoint
from w2vlens.embeddings.store import layer_name
from w2vlens.errors import W2VLensError

SIDES = ("finetuned", "pretrained")  # the pair's checkpoints, in extraction order
EVERY_LAYER = "all"
Layers = tuple[int, ...] | str  # layer indices (negative ones count from the last), or EVERY_LAYER


def parse_layers(spec: object) -> Layers:
    """A layer spec as given (an index, a list of them, or `all`) as a tuple of indices or `all`."""
    if spec == EVERY_LAYER:
        return EVERY_LAYER
    return tuple(int(layer) for layer in (spec if isinstance(spec, Sequence) and not isinstance(spec, str)
                                          else [spec]))


def layer_arrays(layers: Layers, checkpoint: Checkpoint, key: str = "layer") -> list[tuple[str, int]]:
    """(array name, layer index) for each of `layers` of `checkpoint`; an index it lacks is a
    one-line error naming `key`, the setting that asked for it."""
    indices = range(checkpoint.num_layers + 1) if layers == EVERY_LAYER else layers
    names = []
    for layer in indices:
        try:
            name = layer_name(layer, checkpoint.num_layers)
        except IndexError:
            raise W2VLensError(f"{key}={layer}: {checkpoint.name} has layers 0..{checkpoint.num_layers}") from None
        names.append((name, int(name.split("_")[1])))
    return names


@dataclass(frozen=True)
class View:
    """`name` (`finetuned`, `cnn`, ...), the checkpoint it is read from (`side`: pretrained or
    finetuned), its `kind` (cnn or transformer) and, for a Transformer view, its `layers`."""

    name: str
    side: str
    kind: str
    layers: Layers = ()

    @classmethod
    def parse(cls, name: str, checkpoint: str, view: str, layer: object = None) -> View:
        """A view from its settings (the keys of conf/model/*.yaml); `layer` is ignored for the CNN."""
        return cls(name, checkpoint, view, () if view == "cnn" else parse_layers(layer))

    def arrays(self, checkpoint: Checkpoint) -> list[tuple[str, int | None]]:
        """(array name, layer index) of each array the view reads; the CNN view's has no layer."""
        return [("cnn", None)] if self.kind == "cnn" else layer_arrays(self.layers, checkpoint)

    def tag(self, checkpoint: Checkpoint) -> str:
        """The layers the view reads as the run's tag says them: `cnn`, `all`, or indices such as `4,12`."""
        if self.layers == EVERY_LAYER:
            return EVERY_LAYER
        return ",".join("cnn" if layer is None else str(layer) for _, layer in self.arrays(checkpoint))


def shard_views(layers: object) -> list[View]:
    """What a shard job keeps beyond its analysis's views, since it cannot know the later analysis:
    the CNN and `layers` of both checkpoints."""
    return [View("cnn", "pretrained", "cnn")] + [View(side, side, "transformer", parse_layers(layers))
                                                 for side in SIDES]


def needed_arrays(views: Iterable[View], checkpoints: Mapping[str, Checkpoint], extra: object = None
                  ) -> dict[str, set[str]]:
    """The arrays each checkpoint's store must keep: what the views read, the fine-tuned logits
    (they label the frames), and `extra` layers on top (`extract.layers`; `all`: every array of
    both). Checks every layer index against its checkpoint."""
    needed: dict[str, set[str]] = {side: set() for side in checkpoints}
    needed["finetuned"].add("logits")
    for view in views:
        needed[view.side] |= {name for name, _ in view.arrays(checkpoints[view.side])}
    for side, checkpoint in checkpoints.items():
        if extra == EVERY_LAYER:
            needed[side] = set(checkpoint_arrays(checkpoint))
        elif extra is not None:
            needed[side] |= {name for name, _ in layer_arrays(parse_layers(extra), checkpoint, "extract.layers")}
    return needed


def layer_tag(views: Sequence[View], checkpoints: Mapping[str, Checkpoint]) -> str:
    """The MLflow `layer` tag: the layers each view reads (one view: `4`, `4,12` or `cnn`; several
    as name=layers: `cnn=cnn pretrained=12 finetuned=12`)."""
    tags = [view.tag(checkpoints[view.side]) for view in views]
    return tags[0] if len(tags) == 1 else " ".join(f"{view.name}={tag}" for view, tag in zip(views, tags, strict=True))
