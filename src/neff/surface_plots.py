"""Figures of Section 5 and Appendix A.1-A.2 (loss surfaces, decision boundaries, N_eff of
the two-spirals nets, homogeneity), in the style of ``neff.plots``."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .plots import STYLE, mean_band, plt, save
from .tables import headline, labels

DIRECTION_COLORS = {"top": "tab:red", "degenerate": "tab:blue"}


def plane_label(spec: dict) -> str:
    """A plane's config ({space, k, extent}) in words."""
    where = {"full": "whole space", "top": f"top {spec.get('k')} eigenvectors",
             "bottom": f"bottom {spec.get('k')} eigenvectors",
             "complement": f"orthogonal to top {spec.get('k')}"}[spec["space"]]
    return f"{where}, $\\pm${spec['extent']:g}"


def loss_planes(surfaces: dict[str, pd.DataFrame], paths: Sequence[str | Path], title: str = "") -> None:
    """One heatmap of log10 train loss per plane (columns a, b, loss), all on one colour scale,
    the trained parameters at the centre (white cross)."""
    logs = {label: np.log10(surface.pivot(index="b", columns="a", values="loss").sort_index())
            for label, surface in surfaces.items()}
    low = min(float(grid.min().min()) for grid in logs.values())
    high = max(float(grid.max().max()) for grid in logs.values())
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, axes = plt.subplots(1, len(logs), figsize=(2.9 * len(logs) + 0.8, 3.0), layout="constrained",
                                 squeeze=False)
        for ax, (label, grid) in zip(axes[0], logs.items()):
            extent = [grid.columns.min(), grid.columns.max(), grid.index.min(), grid.index.max()]
            image = ax.imshow(grid.to_numpy(), origin="lower", extent=extent, aspect="auto", cmap="viridis",
                              vmin=low, vmax=high)
            ax.plot(0, 0, "w+", ms=8)
            ax.set_title(label, fontsize=8)
            ax.set_xlabel("direction 1")
        axes[0, 0].set_ylabel("direction 2")
        fig.colorbar(image, ax=axes[0].tolist(), label="log10 train loss")
        fig.suptitle(title)
        save(fig, paths)


def decision_boundaries(maps: dict, paths: Sequence[str | Path], title: str = "", per_line: int = 5) -> None:
    """Class-1 probability over the input plane for each parameter vector of ``maps`` (keys
    probabilities, titles, xlim, ylim, inputs, labels; optional ``rows``, the group of each map),
    the 0.5 contour and the training data. The first three maps (trained, bottom, top) share the
    first line; each later group (a classifier grid over norms) takes lines of ``per_line``."""
    probabilities = maps["probabilities"]
    groups = np.asarray(maps.get("rows", np.minimum(np.arange(len(probabilities)), 2)))
    lines = [np.flatnonzero(groups <= 2)]
    for group in np.unique(groups[groups > 2]):
        members = np.flatnonzero(groups == group)
        lines += [members[i:i + per_line] for i in range(0, len(members), per_line)]
    columns = max(len(line) for line in lines)
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, axes = plt.subplots(len(lines), columns, figsize=(3.4 * columns, 3.2 * len(lines)),
                                 layout="constrained", squeeze=False)
        extent = [*maps["xlim"], *maps["ylim"]]
        for line, row in zip(lines, axes):
            for ax in row[len(line):]:
                ax.axis("off")
            for ax, index in zip(row, line):
                probs = probabilities[index]
                ax.imshow(probs, origin="lower", extent=extent, cmap="coolwarm", vmin=0, vmax=1, alpha=0.8)
                ax.contour(probs, levels=[0.5], colors="black", linewidths=1.0, extent=extent)
                for cls, color in ((0, "navy"), (1, "darkred")):
                    ax.scatter(*maps["inputs"][maps["labels"] == cls].T, color=color, s=2, edgecolors="none")
                ax.set_title(str(maps["titles"][index]), fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
        fig.suptitle(title)
        save(fig, paths)


def neff_sweeps(tables: dict[str, pd.DataFrame], z: float, paths: Sequence[str | Path], title: str = "") -> None:
    """One panel per long table (e.g. {"width": ..., "depth": ...}): the headline N_eff at
    ``z`` (left axis) and train/test loss (right axis) against the axis that varies in it, each
    the mean over the table's seeds with a +-1 standard deviation band."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(tables), figsize=(4 * len(tables), 3.2), layout="constrained",
                                 squeeze=False)
        for ax, (name, table) in zip(axes[0], tables.items()):
            rows = headline(table, z)
            axis = "depth" if rows["width"].nunique() == 1 and rows["depth"].nunique() > 1 else "width"
            seeds = rows["seed"].nunique()
            mean_band(ax, rows, axis, "value", marker="^", color="black",
                      label=f"N_eff, {labels(rows)} (z={z:g}), {seeds} seed{'s' * (seeds > 1)}")
            ax.set_xlabel(axis)
            ax.set_ylabel("effective dimensionality")
            right = ax.twinx()
            mean_band(right, rows, axis, "train_loss", marker="o", ls="--", color="tab:blue", label="train loss")
            mean_band(right, rows, axis, "test_loss", marker="s", ls="--", color="tab:red", label="test loss")
            right.set_ylabel("loss")
            right.grid(False)
            fixed = "depth" if axis == "width" else "width"
            ax.set_title(f"{name}: {fixed} {', '.join(str(v) for v in sorted(rows[fixed].unique()))}")
        handles = axes[0, 0].get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        fig.legend(handles, [h.get_label() for h in handles], loc="outside lower center", ncol=3)
        fig.suptitle(title)
        save(fig, paths)


def homogeneity(sweep: pd.DataFrame, paths: Sequence[str | Path], title: str = "") -> None:
    """Loss and homogeneity (fraction of predictions unchanged) against perturbation norm, on
    train and test, for top-eigenvector and degenerate directions: mean and range over trials."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, 2, figsize=(8, 5.5), layout="constrained", sharex=True)
        for col, split in enumerate(("train", "test")):
            for row, metric in enumerate(("loss", "homogeneity")):
                ax = axes[row, col]
                for direction, color in DIRECTION_COLORS.items():
                    rows = sweep[(sweep["split"] == split) & (sweep["direction"] == direction)]
                    stats = rows.groupby("norm")[metric].agg(["mean", "min", "max"])
                    ax.plot(stats.index, stats["mean"], "o-", ms=3, color=color, label=f"{direction} directions")
                    ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.2)
                ax.set_title(f"{split} {metric}")
                ax.set_xlabel("perturbation norm")
        axes[0, 0].set_ylabel("loss")
        axes[1, 0].set_ylabel("fraction of predictions unchanged")
        axes[0, 0].legend()
        fig.suptitle(title)
        save(fig, paths)
