"""The optimizer loop and what it needs: the Accelerator, data loaders, evaluation, checkpoints' state, export."""
