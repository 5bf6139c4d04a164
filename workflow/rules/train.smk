rule train:
    input:
        data=rules.data.output.data,
    output:
        model=f"{MODEL}/model.pt",
        metrics=f"{MODEL}/metrics.csv",
        final=f"{MODEL}/final.json",
        tracking=f"{MODEL}/neff_during_training.csv",
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
        tracking=tracking_spec,
        tracking_partial=f"{MODEL}/neff_during_training.partial.csv",
    script:
        "../../scripts/train.py"
