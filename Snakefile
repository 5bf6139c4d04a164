# Regenerates the figures of Maddox, Benton & Wilson (2020) from declared dependencies.
#   snakemake --cores 2                              every figure of the config (default: offline digits)
#   snakemake --cores 8 results/figures/fig1.pdf     one figure
#   snakemake -n                                     the plan
#   snakemake --cores 8 --configfile config/paper.yaml   the paper's CIFAR experiments (GPUs)


configfile: f"{workflow.basedir}/config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/spectrum.smk"
include: "workflow/rules/measures.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/surfaces.smk"
include: "workflow/rules/bayes.smk"


rule all:
    input:
        expand(
            "results/figures/{figure}.{ext}",
            figure=[*FIGURES, *study_figures(), "fig4", "fig8"],
            ext=["pdf", "png"],
        ),
