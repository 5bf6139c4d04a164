rule train:
    input:
        data=rules.data.output.data,
    output:
        model=f"{MODEL}/model.pt",
        metrics=f"{MODEL}/metrics.csv",
        final=f"{MODEL}/final.json",
    log:
        f"results/logs/train/{MODEL_LOG}.log",
    benchmark:
        f"results/benchmarks/train/{MODEL_LOG}.tsv"
    conda:
        "../../envs/neff.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpu"],
    params:
        train=lambda wc: EXPERIMENTS[wc.experiment]["train"],
        model_kwargs=model_kwargs,
        checkpoint=f"{MODEL}/train.ckpt.pt",
    script:
        "../../scripts/train.py"
