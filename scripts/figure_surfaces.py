"""Rule figure_surfaces: log train loss on each plane of a study (Section 5 or Appendix A.1)."""
import pandas as pd

from neff.files import log_to
from neff.surface_plots import loss_planes, plane_label

sm = snakemake  # noqa: F821 (snakemake injects it)
with log_to(sm.log[0]):
    surfaces = pd.read_csv(sm.input.surfaces)
    loss_planes({plane_label(spec): surfaces[surfaces["plane"] == name] for name, spec in sm.params.planes.items()},
                [sm.output.pdf, sm.output.png], title=sm.params.title)
    print(f"{len(sm.params.planes)} planes: {sm.output.pdf}, {sm.output.png}")
