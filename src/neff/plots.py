"""The paper's figures, drawn from the tables: one style, PDF and PNG side by side."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .files import atomic_path  # noqa: E402
from .tables import headline, labels, select  # noqa: E402

STYLE = {"figure.dpi": 120, "savefig.dpi": 150, "font.size": 9, "axes.spines.top": False,
         "axes.grid": True, "grid.alpha": 0.3, "legend.frameon": False}


def save(fig, paths: Sequence[str | Path]) -> None:
    """Write ``fig`` to each of ``paths`` (the format from the suffix: .pdf, .png), atomically."""
    for path in map(Path, paths):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix[1:], bbox_inches="tight")
    plt.close(fig)


def double_descent(table: pd.DataFrame, z: float, interpolation_threshold: float, paths: Sequence[str | Path],
                   title: str = "") -> None:
    """Figure 1 from a long table: train loss (clean evaluation, and the running mean over the
    epoch's minibatches that the original logged, where recorded) and test loss against width
    (left axis); the headline N_eff at ``z`` with its interval as a band and the paper's
    estimator (its Ritz values alone) as a second line (right axis); the dotted line marks the
    first width whose train loss is below the threshold."""
    with plt.rc_context(STYLE):
        rows = headline(table, z)
        mean = rows.groupby("width").mean(numeric_only=True).sort_index()
        fig, ax = plt.subplots(figsize=(6, 3.8))
        ax.plot(mean.index, mean["train_loss"], "o-", color="tab:blue", label="train loss")
        if "running_train_loss" in mean:
            ax.plot(mean.index, mean["running_train_loss"], "o:", ms=3, color="tab:blue",
                    label="train loss, running (as logged)")
        ax.plot(mean.index, mean["test_loss"], "s-", color="tab:red", label="test loss")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("width")
        ax.set_ylabel("loss")
        interpolating = mean.index[mean["train_loss"] < interpolation_threshold]
        if len(interpolating):
            ax.axvline(interpolating[0], color="grey", ls=":", label="interpolation threshold")
        right = ax.twinx()
        estimator = labels(rows)
        right.plot(mean.index, mean["value"], "^-", color="black", label=f"N_eff, {estimator} (z={z:g})")
        right.fill_between(mean.index, mean["lower"], mean["upper"], color="black", alpha=0.2, lw=0,
                           label=f"{labels(rows, 'interval')} interval")
        if "paper" in set(table["estimator"]):
            paper = select(table, z, "paper").groupby("width")["value"].mean().sort_index()
            right.plot(paper.index, paper.to_numpy(), "x--", color="grey", label="N_eff, paper's estimator")
        right.set_ylabel("effective dimensionality")
        right.grid(False)
        handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        fig.legend(handles, [h.get_label() for h in handles], loc="lower center", ncol=3,
                   bbox_to_anchor=(0.5, -0.04))
        fig.subplots_adjust(bottom=0.32)
        ax.set_title(title)
        save(fig, paths)


def width_depth(table: pd.DataFrame, z: float, interpolation_threshold: float, paths: Sequence[str | Path],
                contours: list[float] | None = None, title: str = "", boundary: dict | None = None) -> None:
    """Figure 2 from a long table, with the original notebook's generalization panels: heatmaps
    of the headline N_eff at ``z``, test loss, train loss and the generalization gap (test -
    train loss) over width x depth, with contours of equal parameter count (white) and a train-
    loss boundary (dashed: ``boundary`` {"loss": column, "level": value}, default the clean
    train loss at the interpolation threshold); and N_eff against the gap, coloured by train loss.
    The gap, its scatter and the boundary use the same train loss (the original: the logged one)."""
    boundary = boundary or {"loss": "train_loss", "level": interpolation_threshold}
    train = boundary["loss"]
    name = "running train loss (as logged)" if train == "running_train_loss" else "train loss"
    table = headline(table, z).assign(gap=lambda t: t["test_loss"] - t[train])
    panels = [("value", f"N_eff, {labels(table)} (z={z:g})"), ("test_loss", "test loss"),
              (train, name), ("gap", f"generalization gap (test - {name})")]
    grid = table.groupby(["depth", "width"]).mean(numeric_only=True)
    depths, widths = sorted(table["depth"].unique()), sorted(table["width"].unique())

    def surface(column):
        return grid[column].unstack("width").reindex(index=depths, columns=widths).to_numpy()

    params = surface("num_params")
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, axes = plt.subplots(1, 5, figsize=(21, 3.8), layout="constrained")
        for ax, (column, label) in zip(axes, panels):
            image = ax.imshow(surface(column), origin="lower", aspect="auto", cmap="viridis")
            fig.colorbar(image, ax=ax)
            ax.set_xticks(range(len(widths)), [str(w) for w in widths])
            ax.set_yticks(range(len(depths)), [str(d) for d in depths])
            ax.set_xlabel("width")
            ax.set_ylabel("depth")
            if len(widths) > 1 and len(depths) > 1:
                levels = sorted(contours or np.geomspace(np.nanmin(params), np.nanmax(params), 5)[1:-1])
                lines = ax.contour(params, levels=levels, colors="white", linewidths=0.8)
                ax.clabel(lines, fmt=lambda v: f"{v:.2g}", fontsize=6)
                ax.contour(surface(train), levels=[boundary["level"]], colors="red",
                           linestyles="--", linewidths=1.2)
            ax.set_title(label)
        points = axes[4].scatter(table["gap"], table["value"], c=table[train], cmap="plasma", s=14)
        fig.colorbar(points, ax=axes[4], label=name)
        axes[4].set_xlabel("generalization gap")
        axes[4].set_ylabel("N_eff")
        axes[4].set_title("N_eff against the gap")
        proxies = [plt.Line2D([], [], color="grey", lw=0.8, label="equal parameter count"),
                   plt.Line2D([], [], color="red", ls="--", label=f"{name} = {boundary['level']:g}")]
        fig.legend(handles=proxies, loc="outside lower center", ncol=2)
        fig.suptitle(title)
        save(fig, paths)


def mean_band(ax, table: pd.DataFrame, x: str, y: str, **style) -> None:
    """The mean of ``y`` over repeats at each ``x``, with a +-1 standard deviation band."""
    stats = table.groupby(x)[y].agg(["mean", "std"]).fillna(0.0)
    line = ax.plot(stats.index, stats["mean"], **style)[0]
    ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                    color=line.get_color(), alpha=0.2, lw=0)


def posterior_contraction(blr: pd.DataFrame, bnn: pd.DataFrame, blr_spec: dict, bnn_spec: dict,
                          paths: Sequence[str | Path]) -> None:
    """Figure 4. Left: N_eff of the BLR posterior covariance (parameter space) and of the
    function-space covariance against the number of points, the band around n = p shaded.
    Right: a BNN's N_eff from NUTS draws (parameters, functions, and the original notebook's
    function-space variant) and of the MAP Hessian."""
    with plt.rc_context(STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
        left.plot(blr["n"], blr["param_neff"], color="tab:blue", label="parameter space")
        left.plot(blr["n"], blr["function_neff"], color="tab:red", label="function space")
        left.axvspan(*blr_spec["band"], color="grey", alpha=0.2, label=f"n near p = {blr_spec['features']}")
        left.set_xlabel("number of data points n")
        left.set_ylabel(f"effective dimensionality (z = {blr_spec['z']:g})")
        left.set_title("Bayesian linear regression")
        left.legend()
        mean_band(right, bnn, "size", "param_neff", marker="o", color="tab:blue",
                   label=f"parameters, NUTS (z = {bnn_spec['z_param']:g})")
        mean_band(right, bnn, "size", "function_neff", marker="s", color="tab:red",
                   label=f"functions, NUTS (z = {bnn_spec['z_function']:g})")
        if "function_neff_original" in bnn:
            mean_band(right, bnn, "size", "function_neff_original", marker="s", ms=3, color="tab:red", ls=":",
                      label="functions, the original's quirk (eigenvalue$^2$ / (S - 1))")
        mean_band(right, bnn, "size", "hessian_neff", marker="^", color="black", ls="--",
                   label=f"MAP Hessian (z = {1 / bnn_spec['prior_scale'] ** 2:g})")
        right.set_xscale("log")
        right.set_xlabel("number of data points N")
        right.set_ylabel("effective dimensionality")
        right.set_title(f"Bayesian neural network ({int(bnn['num_params'].iloc[0])} parameters, "
                        f"{int(bnn['num_samples'].iloc[0])} draws)")
        right.legend()
        save(fig, paths)


def random_features(curve: pd.DataFrame, grid: pd.DataFrame, ridge: float, paths: Sequence[str | Path]) -> None:
    """Figure 8 and the original notebook's other panels. (a) relative train and test error
    (left axis) and min(n, d) - N_eff (right axis) against the number of features d, mean and
    +-1 sd over trials, dotted at d = n; (b) test error against min(n, d) - N_eff, one point a
    fit; (c, d) log10 test and train error over the (d, n) grid (train error floored at 1e-16)."""
    n = int(curve["n"].iloc[0])
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 4, figsize=(17, 3.8), layout="constrained",
                                 gridspec_kw={"width_ratios": [1.5, 1, 1, 1]})
        ax = axes[0]
        mean_band(ax, curve, "d", "train_error", color="tab:blue", label="train error")
        mean_band(ax, curve, "d", "test_error", color="tab:red", label="test error")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("number of features d")
        ax.set_ylabel("relative error ||Xw - y|| / ||y||")
        ax.axvline(n, color="grey", ls=":", label="d = n")
        right = ax.twinx()
        mean_band(right, curve, "d", "effective_dimensionality", color="black", ls="--",
                  label=f"min(n, d) - N_eff (z = {ridge:g} n)")
        right.set_ylabel("min(n, d) - N_eff")
        right.grid(False)
        handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], loc="upper right")
        ax.set_title(f"(a) n = {n}")
        axes[1].scatter(curve["effective_dimensionality"], curve["test_error"], s=6, c=curve["d"], cmap="viridis")
        axes[1].set_xlabel("min(n, d) - N_eff")
        axes[1].set_ylabel("test error")
        axes[1].set_title("(b) test error against it (colour: d)")
        for ax, column, label in ((axes[2], "test_error", "(c) log10 test error"),
                                  (axes[3], "train_error", "(d) log10 train error")):
            surface = grid.groupby(["n", "d"])[column].mean().unstack("d")
            image = ax.contourf(surface.columns, surface.index, np.log10(np.maximum(surface.to_numpy(), 1e-16)),
                                levels=12, cmap="viridis")
            fig.colorbar(image, ax=ax)
            ax.plot(surface.columns, surface.columns, color="white", ls=":", lw=0.8)
            ax.set_xlim(surface.columns.min(), surface.columns.max())
            ax.set_ylim(surface.index.min(), surface.index.max())
            ax.set_xlabel("number of features d")
            ax.set_ylabel("number of data points n")
            ax.set_title(label)
        save(fig, paths)


def training_curves(curves: dict[str, tuple[pd.DataFrame, pd.DataFrame]], z: float, paths: Sequence[str | Path],
                    title: str = "") -> None:
    """N_eff at ``z`` with its interval (top) and train and test loss (bottom) over the epochs
    of each model's training; ``curves`` maps a label (e.g. "width 24") to (its
    N_eff-during-training rows, its metrics rows)."""
    with plt.rc_context(STYLE):
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5.5), sharex=True)
        for (label, (neff, metrics)), color in zip(curves.items(), plt.rcParams["axes.prop_cycle"].by_key()["color"]):
            rows = neff[np.isclose(neff["z"], z)].sort_values("epoch")
            top.plot(rows["epoch"], rows["neff"], "o-", color=color, label=label)
            top.fill_between(rows["epoch"], rows["lower"], rows["upper"], color=color, alpha=0.2, lw=0)
            bottom.plot(metrics["epoch"], metrics["test_loss"], "-", color=color, label=f"{label}: test")
            bottom.plot(metrics["epoch"], metrics["train_loss"], "--", color=color, alpha=0.7, label=f"{label}: train")
        top.set_ylabel(f"N_eff (z = {z:g})")
        top.set_title(f"N_eff and loss during training{f' ({title})' if title else ''}")
        top.legend()
        bottom.set_xlabel("epoch")
        bottom.set_ylabel("loss")
        bottom.legend(ncol=2, fontsize=7)
        save(fig, paths)
