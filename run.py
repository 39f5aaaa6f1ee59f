"""`python -m run`: the w2vlens Hydra app (configs in ./conf)."""

import sys

import hydra
from omegaconf import DictConfig

from w2vlens.app import run
from w2vlens.config import register_resolvers
from w2vlens.errors import W2VLensError

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    try:
        return run(cfg).get("ami")
    except W2VLensError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
