rule table:
    input:
        final=lambda wc: model_files(wc.figure, "final.json"),
        spectrum=lambda wc: model_files(wc.figure, "spectrum.npz"),
    output:
        table="results/tables/{figure}.csv",
        correlations="results/tables/{figure}_correlations.csv",
    log:
        "results/logs/tables/{figure}.log",
    benchmark:
        "results/benchmarks/tables/{figure}.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        grid=lambda wc: grid(wc.figure).dataframe.to_dict("records"),
        effdim=config["effdim"],
    script:
        "../../scripts/table.py"
