"""The harness: what runs inside the sandbox (see docs/architecture.md).

In the sandbox this folder is the package `harness` (``python -m harness``, from
/opt/dojo/harness): the zygote imports everything a lesson needs once (`warmup`), then forks
one child per job that enters its own sandbox (`confine`) and runs the job (`job`). Only the
standard library and the packages every lesson may use are imported here: the runner package
itself is not in the sandbox.
"""
