rule data:
    output:
        data=f"results/{EXPERIMENT}/data.pt",
        record=f"results/{EXPERIMENT}/data.json",
    log:
        f"results/logs/{EXPERIMENT}/data.log",
    benchmark:
        f"results/benchmarks/{EXPERIMENT}/data.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        data=config["data"],
    script:
        "../../scripts/prepare_data.py"
