"""`python -m run`: the w2vlens Hydra app (configs in ./conf)."""

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from w2vlens.config import register_resolvers
from w2vlens.errors import W2VLensError
from w2vlens.runtime import configure_process
from w2vlens.validation import check_config

register_resolvers()
log = logging.getLogger("w2vlens")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """One job; returns its `objective` (the headline score an optimising sweeper maximises). A
    single run stops with a one-line error and exit code 1. A sweep job that fails is recorded as a
    FAILED child run and returns, so that the other jobs still run and the parent run, which lists
    the failures, sets the sweep's exit code."""
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        # The config first, then the process settings, then the app: checking imports nothing heavy,
        # so a bad value is reported in a second or two; the OpenMP policy only counts before torch
        # and FAISS load; the app pulls in torch, transformers and MLflow (seconds).
        check_config(cfg)
        configure_process(cfg.cache_dir)
        from w2vlens.app import run

        return run(cfg).get(cfg.objective)
    except Exception as error:
        if not isinstance(error, W2VLensError):
            if not in_sweep:
                raise
            log.exception("job failed")  # a bug, not bad input: its traceback goes to the job's log
        message = str(error) if isinstance(error, W2VLensError) else f"{type(error).__name__}: {error}"
        print(f"error: {message}", file=sys.stderr)
        if not in_sweep:
            sys.exit(1)
        from w2vlens import tracking

        tracking.record_failed_job(cfg.tracking.dir, cfg.tracking.experiment, message)
        return None


if __name__ == "__main__":
    main()
