"""N_eff during training in PyTorch Lightning (the ``lightning`` extra):

    trainer = lightning.Trainer(callbacks=[EffDimCallback(loss_fn, train_batches, z=[0.01, 0.1], every=5,
                                                          csv="neff.csv")])

At the end of every ``every``-th training epoch the callback measures the LightningModule
with :class:`neff.tracking.EffDimTracker` (its options are the callback's), and logs N_eff and
its interval through the trainer's loggers (``neff/z=0.01`` and so on)."""
from __future__ import annotations

from lightning.pytorch import Callback

from .tracking import SCALARS, EffDimTracker


class EffDimCallback(Callback):
    """A Lightning callback around :class:`~neff.tracking.EffDimTracker`; ``tracker`` holds
    its rows and last result."""

    def __init__(self, loss_fn, data, z, **options):
        self.tracker = EffDimTracker(loss_fn, data, z, **options)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        estimate = self.tracker.step(pl_module, trainer.current_epoch + 1)
        if estimate is not None:
            for row in self.tracker.rows[-len(estimate.z):]:
                pl_module.log_dict({f"{name}/z={row['z']:g}": row[key] for key, name in SCALARS.items()},
                                   on_epoch=True)
