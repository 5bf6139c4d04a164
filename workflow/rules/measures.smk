# Section 7: generalization measures of one trained model (parameter norms, path norm, PAC-Bayes
# flatness sigma and its magnitude-aware variant), for the experiments with a `measures` key.
rule measures:
    input:
        data=rules.data.output.data,
        model=rules.train.output.model,
    output:
        measures=f"{MODEL}/measures.json",
    log:
        f"results/logs/measures/{MODEL_LOG}.log",
    benchmark:
        f"results/benchmarks/measures/{MODEL_LOG}.tsv"
    wildcard_constraints:
        experiment=names(MEASURED),
    conda:
        "../../envs/neff.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpu"],
    params:
        measures=measures_spec,
        model_kwargs=model_kwargs,
    script:
        "../../scripts/measures.py"
