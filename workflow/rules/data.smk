rule data:
    output:
        data=f"results/{EXPERIMENT}/data.pt",
        record=f"results/{EXPERIMENT}/data.json",
    params:
        data=config["data"],
    log:
        f"results/logs/{EXPERIMENT}/data.log",
    benchmark:
        f"results/benchmarks/{EXPERIMENT}/data.tsv"
    conda:
        "../../envs/neff.yaml"
    script:
        "../../scripts/prepare_data.py"
