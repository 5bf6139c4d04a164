"""Section 7's figure: N_eff beside other generalization measures, in the original's style."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .measures import MEASURES
from .plots import STYLE, plt, save
from .tables import TARGETS, headline, rank_correlations

NAMES = {"neff": "N_eff", "num_params": "parameters", "l2_norm": "L2 norm", "l2_norm_weights": "L2 norm (weights)",
         "path_norm": "path norm", "pacbayes_flatness": "1/sigma^2", "pacbayes_mag_flatness": "1/sigma'^2 (mag.)"}
TARGET_NAMES = {"test_loss": "test loss", "test_error": "test error", "gen_gap": "generalization gap"}
TARGET_COLOURS = {"test_loss": "tab:red", "test_error": "salmon", "gen_gap": "black"}


def size_axis(rows: pd.DataFrame) -> str:
    """The column a grid varies along: width, depth, or the parameter count where both vary."""
    varying = [axis for axis in ("width", "depth") if rows[axis].nunique() > 1]
    return varying[0] if len(varying) == 1 else "num_params"


def standardised(values: pd.Series) -> pd.Series:
    """(x - mean) / standard deviation across the grid; a constant measure is all zeros."""
    spread = values.std()
    return (values - values.mean()) / (spread if spread > 0 else 1.0)


def measures_figure(tables: dict[str, pd.DataFrame], z: float, interpolation_threshold: float,
                    paths: Sequence[str | Path], title: str = "") -> None:
    """One column per table (a grid). Top: train and test loss (left axis) and each measure of
    the grid standardised across it (right axis), against the grid's size axis (points, not
    lines, against the parameter count), means over seeds: N_eff (the headline at ``z``), the parameter count and the measures of
    :mod:`neff.measures` the table has. Bottom: the Kendall tau of each measure with each target
    (:data:`neff.tables.TARGETS`) over all of the grid's models, and over the interpolating ones
    (train loss below ``interpolation_threshold``) as hatched bars."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, len(tables), figsize=(5.5 * len(tables), 7), layout="constrained",
                                 squeeze=False, height_ratios=[3, 2])
        twins = []  # the right axes of the top row
        for (top, bottom), (name, table) in zip(axes.T, tables.items()):
            rows = headline(table, z).assign(neff=lambda t: t["value"])
            measures = ["neff", *(m for m in ("num_params", *MEASURES) if m in rows)]
            axis = size_axis(rows)
            mean = rows.groupby(axis).mean(numeric_only=True).sort_index()
            mean[axis] = mean.index
            scatter = axis == "num_params"  # models of several depths: points, not one line
            top.plot(mean.index, mean["train_loss"], "o", ls="none" if scatter else "-", color="tab:blue", lw=2,
                     label="train loss")
            top.plot(mean.index, mean["test_loss"], "s", ls="none" if scatter else "-", color="tab:red", lw=2,
                     label="test loss")
            top.set_xscale("log", base=2)
            top.set_xlabel(axis)
            top.set_ylabel("loss")
            top.set_title(name)
            right = top.twinx()
            for i, measure in enumerate(measures):
                right.plot(mean.index, standardised(mean[measure]), ls="none" if scatter else "--", marker=".",
                           color=f"C{i + 2}",
                           lw=2.5 if measure == "neff" else 1.2, label=f"{NAMES[measure]} (standardised)")
            right.set_ylabel("measure, standardised")
            right.grid(False)
            bars(bottom, rank_correlations(rows, interpolation_threshold=interpolation_threshold), measures)
            twins.append(right)
        handles = [handle for ax in (axes[0, 0], twins[0], axes[1, 0]) for handle in ax.get_legend_handles_labels()[0]]
        fig.legend(handles, [h.get_label() for h in handles], loc="outside lower center", ncol=4, fontsize=8)
        fig.suptitle(f"{title}; N_eff at z = {z:g}")
        save(fig, paths)


def bars(ax, correlations: pd.DataFrame, measures: list[str]) -> None:
    """Kendall tau per measure (groups) and target (colours), all models solid, interpolating
    ones hatched."""
    width = 0.8 / (2 * len(TARGETS))
    x = np.arange(len(measures))
    for t, target in enumerate(TARGETS):
        for s, subset in enumerate(("all", "interpolating")):
            part = correlations[(correlations["target"] == target) & (correlations["models"] == subset)]
            tau = part.set_index("measure")["kendall_tau"].reindex(measures)
            ax.bar(x + (2 * t + s - len(TARGETS) + 0.5) * width, tau, width, color=TARGET_COLOURS[target],
                   hatch="//" if s else None, alpha=0.6 if s else 1.0,
                   label=f"tau with {TARGET_NAMES[target]}{', interpolating models' if s else ''}")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, [NAMES[m] for m in measures], rotation=20, ha="right")
    ax.set_ylim(-1, 1)
    ax.set_ylabel("Kendall tau with the target")
