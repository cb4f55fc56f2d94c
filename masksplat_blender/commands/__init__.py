"""The batch commands, one module each: plain functions over the add-on's own operators.

Each module has `run(args, outputs) -> summary`: it declares its inputs and every output
with `outputs` (core.outputs.OutputSet) before it writes anything, writes the outputs to
their temporaries, and returns the summary; `masksplat_blender/batch.py` parses the
command line, publishes the outputs as one set and turns errors into exit codes. Nothing
here imports drawing code (the gpu module is absent in `blender -b`).
"""
