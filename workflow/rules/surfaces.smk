# Section 5 (two spirals) and Appendix A.1-A.2 (loss surfaces, homogeneity): around one trained
# model of an experiment (config `studies`), loss on 2-D planes in chunks, perturbation sweeps
# and decision boundaries, from the eigenvectors its spectrum keeps.


wildcard_constraints:
    plane=r"[A-Za-z0-9_]+",
    chunk=r"\d+",


rule surfaces_directions:
    input:
        unpack(study_inputs("data", "model", "spectrum")),
    output:
        directions=f"{STUDY}/directions.pt",
        record=f"{STUDY}/directions.json",
    log:
        "results/logs/surfaces_directions/{study}.log",
    benchmark:
        "results/benchmarks/surfaces_directions/{study}.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        planes=lambda wc: STUDIES[wc.study]["planes"],
        grid=lambda wc: STUDIES[wc.study]["grid"],
        point=lambda wc: STUDIES[wc.study]["model"],
        model_kwargs=study_model_kwargs,
    script:
        "../../scripts/surfaces_directions.py"


rule surfaces_chunk:
    input:
        unpack(study_inputs("data", "model")),
        directions=rules.surfaces_directions.output.directions,
    output:
        chunk=f"{STUDY}/planes/plane~{{plane}}/chunk~{{chunk}}.npz",
    log:
        "results/logs/surfaces_chunk/{study}/plane~{plane}/chunk~{chunk}.log",
    benchmark:
        "results/benchmarks/surfaces_chunk/{study}/plane~{plane}/chunk~{chunk}.tsv"
    conda:
        "../../envs/neff.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpu"],
    params:
        plane=lambda wc: STUDIES[wc.study]["planes"][wc.plane],
        grid=lambda wc: STUDIES[wc.study]["grid"],
        spectrum=lambda wc: study_experiment(wc)["spectrum"],
        point=lambda wc: STUDIES[wc.study]["model"],
        model_kwargs=study_model_kwargs,
    script:
        "../../scripts/surfaces_chunk.py"


rule surfaces_join:
    input:
        chunks=lambda wc: expand(
            rules.surfaces_chunk.output.chunk,
            plane=STUDIES[wc.study]["planes"],
            chunk=range(STUDIES[wc.study]["grid"]["chunks"]),
            allow_missing=True,
        ),
    output:
        surfaces=f"{STUDY}/surfaces.csv",
        record=f"{STUDY}/surfaces.json",
    log:
        "results/logs/surfaces_join/{study}.log",
    benchmark:
        "results/benchmarks/surfaces_join/{study}.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        planes=lambda wc: STUDIES[wc.study]["planes"],
        grid=lambda wc: STUDIES[wc.study]["grid"],
    script:
        "../../scripts/surfaces_join.py"


rule surfaces_sweep:
    input:
        unpack(study_inputs("data", "model", "spectrum")),
    output:
        sweep=f"{STUDY}/sweep.csv",
        record=f"{STUDY}/sweep.json",
    log:
        "results/logs/surfaces_sweep/{study}.log",
    benchmark:
        "results/benchmarks/surfaces_sweep/{study}.tsv"
    conda:
        "../../envs/neff.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpu"],
    params:
        sweep=lambda wc: STUDIES[wc.study]["sweep"],
        spectrum=lambda wc: study_experiment(wc)["spectrum"],
        point=lambda wc: STUDIES[wc.study]["model"],
        model_kwargs=study_model_kwargs,
    script:
        "../../scripts/surfaces_sweep.py"


rule surfaces_boundaries:
    input:
        unpack(study_inputs("data", "model", "spectrum")),
    output:
        maps=f"{STUDY}/boundaries.npz",
        record=f"{STUDY}/boundaries.json",
    log:
        "results/logs/surfaces_boundaries/{study}.log",
    benchmark:
        "results/benchmarks/surfaces_boundaries/{study}.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        boundaries=lambda wc: STUDIES[wc.study]["boundaries"],
        spectrum=lambda wc: study_experiment(wc)["spectrum"],
        point=lambda wc: STUDIES[wc.study]["model"],
        model_kwargs=study_model_kwargs,
    script:
        "../../scripts/surfaces_boundaries.py"


rule figure_surfaces:
    input:
        surfaces=rules.surfaces_join.output.surfaces,
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
        planes=lambda wc: STUDIES[wc.study]["planes"],
        title=lambda wc: study_title(wc.study),
    script:
        "../../scripts/figure_surfaces.py"


rule figure_boundaries:
    input:
        maps=rules.surfaces_boundaries.output.maps,
    output:
        pdf=report(
            "results/figures/{study}_boundaries.pdf",
            caption="../report/boundaries.rst",
            category="Figures",
        ),
        png="results/figures/{study}_boundaries.png",
    log:
        "results/logs/figures/{study}_boundaries.log",
    benchmark:
        "results/benchmarks/figures/{study}_boundaries.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        title=lambda wc: f"{study_title(wc.study)}: decision boundaries",
    script:
        "../../scripts/figure_boundaries.py"


rule figure_perturbations:
    input:
        sweep=rules.surfaces_sweep.output.sweep,
    output:
        pdf=report(
            "results/figures/{study}_perturbations.pdf",
            caption="../report/perturbations.rst",
            category="Figures",
        ),
        png="results/figures/{study}_perturbations.png",
    log:
        "results/logs/figures/{study}_perturbations.log",
    benchmark:
        "results/benchmarks/figures/{study}_perturbations.tsv"
    conda:
        "../../envs/neff.yaml"
    params:
        title=lambda wc: study_title(wc.study),
    script:
        "../../scripts/figure_perturbations.py"
