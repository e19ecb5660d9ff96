"""Lightning modules, data modules and the trainer factory: from one CPU to DDP under torchrun.

Library code: nothing here knows about Kedro.
"""
