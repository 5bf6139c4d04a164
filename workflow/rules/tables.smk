# The long N_eff table of a grid (one row per model, z and estimator; each model's generalization
# measures where its experiment has them) and the rank correlations of every measure.
rule table:
    input:
        final=lambda wc: grid_files(wc.experiment, wc.grid, "final.json"),
        spectrum=lambda wc: grid_files(wc.experiment, wc.grid, "spectrum.npz"),
        measures=grid_measures,
    output:
        table="results/tables/{experiment}/{grid}.csv",
        correlations="results/tables/{experiment}/{grid}.correlations.csv",
    log:
        "results/logs/table/{experiment}/{grid}.log",
    benchmark:
        "results/benchmarks/table/{experiment}/{grid}.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        effdim=lambda wc: EXPERIMENTS[wc.experiment]["effdim"],
        paper_steps=lambda wc: EXPERIMENTS[wc.experiment]["spectrum"].get(
            "paper_steps", 100
        ),
    script:
        "../../scripts/table.py"
