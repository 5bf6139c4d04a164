# Section 5 (two spirals) and Appendix A.1-A.2 (loss surfaces, homogeneity): one trained model
# per study, its Hessian eigenvectors, loss on 2-D planes in chunks, perturbation sweeps,
# decision boundaries and N_eff of the two-spirals nets across width and depth.
include: "surfaces_common.smk"


rule surfaces_data:
    output:
        data="results/{sexp}/data.pt",
        record="results/{sexp}/data.json",
    log:
        "results/logs/{sexp}/data.log",
    benchmark:
        "results/benchmarks/{sexp}/data.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        data=lambda wc: study(wc)["data"],
    script:
        "../../scripts/prepare_data.py"


rule surfaces_train:
    input:
        data=rules.surfaces_data.output.data,
    output:
        model=f"{SMODEL}/model.pt",
        metrics=f"{SMODEL}/metrics.csv",
        final=f"{SMODEL}/final.json",
    log:
        f"results/logs/{SLOG}/train.log",
    benchmark:
        f"results/benchmarks/{SLOG}/train.tsv"
    conda:
        "../../envs/neff.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpu"],
    params:
        train=lambda wc: study(wc)["train"],
        model_kwargs=lambda wc: study(wc)["model"]["kwargs"],
        checkpoint=f"{SMODEL}/train.ckpt.pt",
    script:
        "../../scripts/train.py"


rule surfaces_spectrum:
    input:
        data=rules.surfaces_data.output.data,
        model=rules.surfaces_train.output.model,
    output:
        spectrum=f"{SMODEL}/spectrum.npz",
        record=f"{SMODEL}/spectrum.json",
    log:
        f"results/logs/{SLOG}/spectrum.log",
    benchmark:
        f"results/benchmarks/{SLOG}/spectrum.tsv"
    conda:
        "../../envs/neff.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpu"],
    params:
        hessian=lambda wc: study(wc)["hessian"],
        model_kwargs=lambda wc: study(wc)["model"]["kwargs"],
    script:
        "../../scripts/surfaces_eigen.py"


rule surfaces_eigen:
    input:
        data=rules.surfaces_data.output.data,
        model=rules.surfaces_train.output.model,
    output:
        eigenvectors=f"{SMODEL}/eigenvectors.pt",
        record=f"{SMODEL}/eigenvectors.json",
    log:
        f"results/logs/{SLOG}/eigen.log",
    benchmark:
        f"results/benchmarks/{SLOG}/eigen.tsv"
    conda:
        "../../envs/neff.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpu"],
    params:
        hessian=lambda wc: study(wc)["hessian"],
        model_kwargs=lambda wc: study(wc)["model"]["kwargs"],
    script:
        "../../scripts/surfaces_eigen.py"


rule surfaces_directions:
    input:
        data=rules.surfaces_data.output.data,
        model=rules.surfaces_train.output.model,
        eigenvectors=rules.surfaces_eigen.output.eigenvectors,
    output:
        directions=f"{SMODEL}/planes/directions.pt",
        record=f"{SMODEL}/planes/directions.json",
    log:
        f"results/logs/{SLOG}/planes/directions.log",
    benchmark:
        f"results/benchmarks/{SLOG}/planes/directions.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        planes=lambda wc: study(wc)["planes"],
        grid=lambda wc: study(wc)["grid"],
        model_kwargs=lambda wc: study(wc)["model"]["kwargs"],
    script:
        "../../scripts/surfaces_directions.py"


rule surfaces_chunk:
    input:
        data=rules.surfaces_data.output.data,
        model=rules.surfaces_train.output.model,
        directions=rules.surfaces_directions.output.directions,
    output:
        chunk=f"{SMODEL}/planes/plane~{{plane}}/chunk~{{chunk}}.npz",
    log:
        f"results/logs/{SLOG}/planes/plane~{{plane}}/chunk~{{chunk}}.log",
    benchmark:
        f"results/benchmarks/{SLOG}/planes/plane~{{plane}}/chunk~{{chunk}}.tsv"
    conda:
        "../../envs/neff.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpu"],
    params:
        plane=lambda wc: study(wc)["planes"][wc.plane],
        grid=lambda wc: study(wc)["grid"],
        hessian=lambda wc: study(wc)["hessian"],
        model_kwargs=lambda wc: study(wc)["model"]["kwargs"],
    script:
        "../../scripts/surfaces_chunk.py"


rule surfaces_join:
    input:
        chunks=lambda wc: expand(
            f"{SMODEL}/planes/plane~{{plane}}/chunk~{{chunk}}.npz",
            plane=study(wc)["planes"],
            chunk=range(study(wc)["grid"]["chunks"]),
            allow_missing=True,
        ),
    output:
        surfaces=f"{SMODEL}/planes/surfaces.csv",
        record=f"{SMODEL}/planes/surfaces.json",
    log:
        f"results/logs/{SLOG}/planes/surfaces.log",
    benchmark:
        f"results/benchmarks/{SLOG}/planes/surfaces.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        planes=lambda wc: study(wc)["planes"],
        grid=lambda wc: study(wc)["grid"],
    script:
        "../../scripts/surfaces_join.py"


rule surfaces_sweep:
    input:
        data=rules.surfaces_data.output.data,
        model=rules.surfaces_train.output.model,
        eigenvectors=rules.surfaces_eigen.output.eigenvectors,
    output:
        sweep=f"{SMODEL}/sweep.csv",
        record=f"{SMODEL}/sweep.json",
    log:
        f"results/logs/{SLOG}/sweep.log",
    benchmark:
        f"results/benchmarks/{SLOG}/sweep.tsv"
    conda:
        "../../envs/neff.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpu"],
    params:
        sweep=lambda wc: study(wc)["sweep"],
        hessian=lambda wc: study(wc)["hessian"],
        model_kwargs=lambda wc: study(wc)["model"]["kwargs"],
    script:
        "../../scripts/surfaces_sweep.py"


rule surfaces_boundaries:
    input:
        data=rules.surfaces_data.output.data,
        model=rules.surfaces_train.output.model,
        eigenvectors=rules.surfaces_eigen.output.eigenvectors,
    output:
        maps=f"{SMODEL}/boundaries.npz",
        record=f"{SMODEL}/boundaries.json",
    log:
        f"results/logs/{SLOG}/boundaries.log",
    benchmark:
        f"results/benchmarks/{SLOG}/boundaries.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        boundaries=lambda wc: study(wc)["boundaries"],
        hessian=lambda wc: study(wc)["hessian"],
        model_kwargs=lambda wc: study(wc)["model"]["kwargs"],
    script:
        "../../scripts/surfaces_boundaries.py"


rule surfaces_neff_table:
    input:
        final=neff_models("final.json"),
        spectrum=neff_models("spectrum.npz"),
    output:
        table="results/tables/spirals_neff.csv",
    log:
        "results/logs/tables/spirals_neff.log",
    benchmark:
        "results/benchmarks/tables/spirals_neff.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        grid=neff_grid(),
        z=SURFACES["spirals"]["neff"]["z"],
    script:
        "../../scripts/surfaces_neff_table.py"


rule surfaces_figure:
    input:
        surfaces=lambda wc: f"{study_model(wc.study)}/planes/surfaces.csv",
    output:
        pdf=report(
            "results/figures/{study}_surfaces.pdf",
            caption="../report/surfaces_planes.rst",
            category="Figures",
        ),
        png="results/figures/{study}_surfaces.png",
    log:
        "results/logs/figures/{study}_surfaces.log",
    benchmark:
        "results/benchmarks/figures/{study}_surfaces.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        planes=lambda wc: SURFACES[wc.study]["planes"],
        title=lambda wc: f"{SURFACES[wc.study]['data']['name']}, {SURFACES[wc.study]['model']['name']}",
    script:
        "../../scripts/figure_surfaces.py"


rule spirals_boundaries_figure:
    input:
        maps=f"{study_model('spirals')}/boundaries.npz",
    output:
        pdf=report(
            "results/figures/spirals_boundaries.pdf",
            caption="../report/spirals_boundaries.rst",
            category="Figures",
        ),
        png="results/figures/spirals_boundaries.png",
    log:
        "results/logs/figures/spirals_boundaries.log",
    benchmark:
        "results/benchmarks/figures/spirals_boundaries.tsv"
    conda:
        "../../envs/neff.yaml"
    script:
        "../../scripts/figure_boundaries.py"


rule spirals_neff_figure:
    input:
        table=rules.surfaces_neff_table.output.table,
    output:
        pdf=report(
            "results/figures/spirals_neff.pdf",
            caption="../report/spirals_neff.rst",
            category="Figures",
        ),
        png="results/figures/spirals_neff.png",
    log:
        "results/logs/figures/spirals_neff.log",
    benchmark:
        "results/benchmarks/figures/spirals_neff.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        z=SURFACES["spirals"]["neff"]["z"],
    script:
        "../../scripts/figure_spirals_neff.py"


rule homogeneity_figure:
    input:
        sweep=f"{study_model('homogeneity')}/sweep.csv",
    output:
        pdf=report(
            "results/figures/homogeneity_perturbations.pdf",
            caption="../report/homogeneity_perturbations.rst",
            category="Figures",
        ),
        png="results/figures/homogeneity_perturbations.png",
    log:
        "results/logs/figures/homogeneity_perturbations.log",
    benchmark:
        "results/benchmarks/figures/homogeneity_perturbations.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        title=f"{SURFACES['homogeneity']['data']['name']}, {SURFACES['homogeneity']['model']['name']}",
    script:
        "../../scripts/figure_homogeneity.py"
