"""The registry of the 50 papers this project implements (``/work/shared/papers/abstracts.md``).

One :class:`Paper` per paper: its id (``P1`` .. ``P50``), a short title, the package path that is
its home (see ARCHITECTURE.md), its status and an optional note. Status is one of
:data:`STATUSES`:

* ``planned``: nothing landed yet;
* ``partial``: some of the method or its experiment landed (the note says what is missing);
* ``done``: method, tests and experiment landed.

The README's paper table (``python -m experiments report``) is generated from this registry, the
experiment modules (their ``PAPERS``, ``CLAIM`` and ``summarize``) and the records in
``results/``. Measured numbers never live here; they come from the records.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

STATUSES = ("planned", "partial", "done")


@dataclasses.dataclass(frozen=True)
class Paper:
    """One paper: ``id`` (``"P4"``), short ``title``, home ``module`` path, ``status`` and ``note``."""

    id: str
    title: str
    module: str
    status: str
    note: str = ""

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"paper {self.id}: status must be one of {STATUSES}, got {self.status!r}")
        if "|" in self.title + self.note or "\n" in self.title + self.note:
            raise ValueError(f"paper {self.id}: title and note must not contain '|' or newlines")


PAPERS: tuple[Paper, ...] = (
    Paper('P1', 'An Efficient Tester-Learner for Halfspaces',
          'sparsejax/algorithms/', 'partial',
          'DKTZ20 PSGD learner + label-aware and moment tests RECONSTRUCTED (no paper body or official code): '
          'thresholds Monte-Carlo calibrated, gradient threshold a fixed constant; Gaussian target only (no '
          'strongly log-concave targets, no degree-4+ moment matching); theory constants replaced by practical ones'),
    Paper('P2', 'Fast, Expressive SE(n) Equivariant Networks through Weight-Sharing in…',
          'geometry/ponita/', 'done'),
    Paper('P3', 'GQSA: Group Quantization and Sparsity for Accelerating Large Language…',
          'sparsejax/quant/', 'done'),
    Paper('P4', 'The Unreasonable Effectiveness of Random Pruning: Return of the Most…',
          'sparsejax/core/', 'done', 'uniform, ER, ERK (+ erk_power_scale), uniform+ and random masks at SNIP/GraSP '
          'ratios; masked step overhead measured by bench_masked_step'),
    Paper('P5', 'Sparse Model Soups: A Recipe for Improved Pruning via Model Averaging',
          'sparsejax/pruning/', 'done', 'claim not reproduced at smoke scale (digits CNN)'),
    Paper('P6', 'Faster Algorithms for Text-to-Pattern Hamming Distances',
          'sparsejax/algorithms/', 'partial', 'no official code, paper body not retrievable: hamming_packed is a '
          'RECONSTRUCTION of the exact Las Vegas algorithm (tau=sqrt(m) split, bit-packed float64 FFT for heavy '
          'characters, rounding-check retry), exact vs brute force; its hashing/recursion (X+Y sumset) step, the '
          'deterministic and k-bounded variants and the eps^-0.93 approximation are not implemented '
          '(Kopelowitz-Porat stands in); baselines: brute, per-character FFT, Abrahamson, early-exit k-bounded, '
          'a sampling estimator of ours'),
    Paper('P7', 'Progressive Gradient Flow for Robust N:M Sparsity Training in…',
          'sparsejax/structured/', 'done', 'all four recipes (MDGF-Linear/Exp, SDGF-Stepwise/Geometric) plus the '
          'official densify decay; official decay coefficient 2e-4 (per-T option); tiny ViT/LM, 1 seed'),
    Paper('P8', 'Likelihood Adjusted Semidefinite Programs for Clustering Heterogeneous…',
          'geometry/clustering/', 'done', 'reconstruction (no code, paper body unread): LA-SDP constraint set, argmax rounding and the covariance re-estimation loop are guesses; 2-cluster synthetic mixtures n=60 only, no adversarial-centroid or high-dimensional study'),
    Paper('P9', 'A Nearly-Optimal Bound for Fast Regression with ell_infty Guarantee',
          'sparsejax/sketch/', 'done', 'dense (SRHT/Gaussian) sketch-and-solve at the theorem m (constant 1); '
          'experiment checks the m^-1/2 shape only (the paper m exceeds n at these sizes); spiky hard instance is ours'),
    Paper('P10', 'Improved Analysis of Sparse Linear Regression in Local Differential…',
          'sparsejax/recovery/', 'done', 'no official code, paper body unavailable: NLDP estimator (truncation, '
          'Gaussian mechanism at exact sensitivities, eigenvalue-floored closed form, top-k) and LDP-IHT reconstructed; '
          'Rademacher data, fixed delta; SI lower-bound experiment not done'),
    Paper('P11', 'Sharper Bounds for ell_p Sensitivity Sampling',
          'sparsejax/sketch/', 'done', 'exact sensitivities (HiGHS LP at p=1, IRLS otherwise), Lewis-weight bounds; '
          'p<2 bound is Chen-Derezinski (paper v2); distortion estimated by multi-start ascent (a lower bound); small n'),
    Paper('P12', 'S^{2}FT: Efficient, Scalable and Generalizable LLM Fine-tuning by…',
          'sparsejax/llm/', 'done', 'tiny 4-layer LM, grammar A to shifted B, official ratios; memory/FLOPs analytic only'),
    Paper('P13', 'Towards Competitive Search Relevance For Inference-Free Learned Sparse…',
          'sparsejax/retrieval/', 'done', 'checked against the authors\' training code (query idf, FLOPS, quadratic '
          'warm-up, teacher min-max x30); synthetic Zipf-topic corpus, encoders trained from scratch (no MLM '
          'pre-training), in-batch negatives only; ensemble KD only in the full preset'),
    Paper('P14', 'Sparse Iso-FLOP Transformations for Maximizing Training Efficiency',
          'sparsejax/structured/sparse_ift.py', 'done', 'official layer structure (norm per Parallel branch, '
          'LN+ReLU between U and V, dense stem and head) with LayerNorm for BN; exactly iso-FLOP; digits, 3 seeds'),
    Paper('P15', 'Solving High-Dimensional PDEs with Latent Spectral Models',
          'generative/pde/', 'done'),
    Paper('P16', 'Shortcut Partitions in Minor-Free Graphs: Steiner Point Removal…',
          'geometry/metric/', 'partial', 'no code, body not readable, all reconstructed: cop-decomposition shortcut '
          'partition (own constants eps*Delta/4), buffer step a guess (grab child-domain vertices within gamma of a '
          'lost cop; buffer property checked exactly); exact strong-diameter, hop-ratio and cop-lemma checks; Steiner '
          'point removal as scale-by-scale contraction through shortcut partitions (distortion measured, not proved; '
          'ties the Voronoi baseline); multi-scale tree cover of ball-restricted cluster-centre trees coloured into '
          'forests (proved 1+4eps stretch, but forest count exceeds n and grows with the number of scales: the O(1) '
          'size is NOT reproduced) and its min-over-forests oracle (not linear-space O(1)-query)'),
    Paper('P17', 'Discovering Interpretable Directions in the Semantic Latent Space of…',
          'generative/diffusion/', 'done'),
    Paper('P18', 'Random Search as a Baseline for Sparse Neural Network Architecture…',
          'sparsejax/nas/', 'done', 'no official code: node-mask search space, shared parent init and short-budget '
          'score (val acc after 20 steps) reconstructed from the abstract; masked-dense MLP'),
    Paper('P19', 'Lie Group Decompositions for Equivariant Neural Networks',
          'geometry/lie/', 'done'),
    Paper('P20', 'Unsupervised Manifold Linearizing and Clustering',
          'geometry/clustering/', 'done', 'MLC loss + ott-jax Sinkhorn membership with the follow-up CPP code defaults (official MLC code unreadable); warm-up self-supervised init reconstructed; MLP on synthetic manifolds + digits, no CIFAR/ResNet; smoke (3 seeds): accuracy claim not held (SSC wins on the synthetic manifolds, MLC ties K-means/spectral on digits), cluster subspaces become near-orthogonal'),
    Paper('P21', 'How to Capture Higher-order Correlations? Generalizing Matrix Softmax…',
          'sparsejax/llm/', 'done', 'exact + Taylor/Khatri-Rao fast version (Taylor, not the paper polynomial); time slopes held; Match3 did not learn at smoke budget'),
    Paper('P22', 'Effective Spectral Unmixing via Robust Representation and…',
          'sparsejax/recovery/', 'done', 'no official code, paper body unavailable: l2,1 loss + per-pixel l_p '
          'MM multiplicative updates reconstructed; guidance-map step is ours (entropy-based, smoothed), so the '
          'objective is monotone only between map updates; synthetic scenes only (no real-scene loader)'),
    Paper('P23', 'DASS: Differentiable Architecture Search for Sparse neural networks',
          'sparsejax/nas/', 'done', 'no official code: tiny DARTS cell with top-k score-gated SparseConv/SparseLinear '
          '(STE), first-order search on the sparse supernet, reconstructed; no BN, mean-of-nodes cell output, '
          'alpha warm-up; searches collapse to skip at smoke scale'),
    Paper('P24', 'Learning k-Level Structured Sparse Neural Networks Using Group Envelope…',
          'sparsejax/regularizers/', 'done', 'no official code and paper body unavailable: WGSEF = squared k-support '
          'norm of group norms, prox derived from its variational form (O(G log G) sort, paper says O(G)); the '
          'exact-k runs use the non-convex gap SEF - 1/2 norm^2 (our reading)'),
    Paper('P25', 'Light Schrödinger Bridge',
          'generative/lightsb/', 'done'),
    Paper('P26', 'Low Rank Matrix Completion via Robust Alternating Minimization in…',
          'sparsejax/recovery/matrix_completion.py', 'done', 'sketch-preconditioned CG per regression, geometric '
          'tolerance schedule (our reading); no sample splitting; wall time only (no flop counts); digits case not run'),
    Paper('P27', 'FLoRA: Low-Rank Core Space for N-dimension',
          'sparsejax/llm/', 'done', 'conv/dense/embedding adapters; digits CNN 0-4 to 5-9 and inverted; no adapter dropout'),
    Paper('P28', 'SparseByteNN: A Novel Mobile Inference Acceleration Framework Based on…',
          'sparsejax/structured/group.py', 'partial', 'input- and output-axis groups and a reconstructed '
          'whole-network channel rearrangement (method text unavailable); per-operator patterns not done'),
    Paper('P29', 'Accelerating Sinkhorn Algorithm with Sparse Newton Iterations',
          'generative/ot/', 'done'),
    Paper('P30', 'Solving 3D Inverse Problems using Pre-trained 2D Diffusion Models',
          'generative/diffusion/mbir.py', 'partial', 'DDS-style VP/DDIM variant (ADMM-TV(z) on the Tweedie '
          'estimate each DDIM step, eta 0.85) instead of the VE predictor-corrector sampler; lambda 0.04, rho 10, one CG '
          'step, persistent (z, u), final Kaczmarz as official; random ellipsoid phantoms stand in for AAPM CT; tiny '
          'UNet prior trained briefly on 32x32 slices; own per-slice Radon (bilinear line sampling, exact adjoint by '
          'linear_transpose); 3 seeds (own test phantoms and sampler noise) share one trained prior; limited-angle '
          'CT and CS-MRI not done'),
    Paper('P31', 'Bayesian Algorithms for Kronecker-structured Sparse Vector Recovery…',
          'sparsejax/recovery/', 'done', 'AM/SVD KroSBL, classic SBL, KOMP, oracle LS checked against the official '
          'MATLAB code (updates, init, pruning 1e-2/1e-3, tolerances); IRS-MIMO generator; PC-KroSBL (block '
          'sparsity) and QPSK SER not done; smoke sizes below the official ones'),
    Paper('P32', 'TEDDY: Trimming Edges with Degree-based Discrimination strategY',
          'sparsejax/graphs/', 'done', 'score, one-shot masks, l0 projection and KD checked against hyunjin72/TEDDY '
          '(undirected edge counting); UGS-lite is a reduced reconstruction; DC-CSBM + karate club with GCN and '
          'GIN; no Cora/Citeseer (offline)'),
    Paper('P33', 'Pruning-aware Sparse Regularization for Network Pruning',
          'sparsejax/regularizers/', 'done', 'masked L1 on BN scales checked against netslim/sparse.py; plain BN-CNN '
          'on digits (no ResNet), s far above the paper 5e-4, slimming mask by global fraction not 0.01'),
    Paper('P34', 'Segmentation of 3D pore space from CT images using curvilinear…',
          'geometry/porous/', 'partial', 'segmentation code not public: skeleton (skimage Lee thinning) branch '
          'split reconstructed (junctions removed, no spur pruning, geodesic BFS assignment, regions split into '
          '6-connected parts); synthetic sphere packs and thresholded Gaussian random fields (filtered white noise) '
          'instead of soil CT; authors\' kinetics/parameters and SPD implicit diffusion (SuperLU/CG) instead of CG on '
          'the non-symmetric mass form; the comparison uses our coupled semi-implicit uptake+diffusion step, not the '
          'authors\' split step (a node takes up at most its own DOM per step, so on voxels it is far from converged: '
          'voxel CO2 at day 3 0.37/0.66/1.08 % at dt 0.02/0.01/0.005 vs 2.53/2.82/2.97 % coupled, Richardson '
          '3.12 %); greedy maximal balls baseline; no SGD-fitted diffusion weights. Smoke (48^3, 3 days, coupled, '
          'dt 0.01: voxel change to dt/2 0.94 pp <= 1 pp tol): skeleton 140x (spheres) / 250x (GRF) fewer nodes '
          'than voxels, 40-90x faster, but NOT closer to voxels than balls: time-mean error skeleton 10-11 pp vs '
          'balls 2-3 pp (max 41-42 vs 9-12 pp; Richardson dt->0 11.5 vs 2.5 pp); at D x100 0.5 vs 0.1 pp. The '
          'well-mixed regions take up DOM at the zero-order rate where voxels are diffusion limited'),
    Paper('P35', 'Demystifying Local and Global Fairness Trade-offs in Federated Learning…',
          'sparsejax/algorithms/', 'done',
          'BROJA PID and AGLFOP solved exactly with cvxpy/Clarabel (official: dit + SLSQP); FedAvg logistic '
          'regression in JAX instead of the torch MLP; synthetic + sklearn diabetes data instead of ADULT'),
    Paper('P36', 'Dynamic Constrained Submodular Optimization with Polylogarithmic Update…',
          'sparsejax/algorithms/', 'partial', 'no official code, paper body unavailable: the level/rebuild rules '
          'are a reconstruction (cost O(k log n / eps), not polylog in k); Lattanzi et al. port, recompute-greedy '
          'and Sieve-Streaming baselines (sieve = Badanidiyuru et al. 2014 on the universe guess grid, sieves holding '
          'a deleted element re-run from scratch on the surviving stream; cheapest on the random-order smoke streams, '
          'but deterministic, so no adversarial-deletion stream was tried); the failure instance for Lattanzi et al. '
          'is missing (the abstract only says its analysis has gaps; paper body unavailable)'),
    Paper('P37', 'Adaptive Sparse Allocation with Mutual Choice & Feature Choice Sparse…',
          'sparsejax/sae/', 'done', 'no official code: aux_zipf, the shared threshold inference rule and the '
          'mean-ablation form of loss recovered are reconstructions; LM setting on a 2-layer grammar LM, not GPT-2'),
    Paper('P38', 'SparseSSP: 3D Subcellular Structure Prediction from Sparse-View…',
          'generative/reconstruction/', 'partial',
          '3e2d topology (nearest z-upsampling, 3D encoder, depth->channel fold with 2D gates, 2D decoder, unfold) '
          'and RepMode MoDE convs (task-gated experts merged into one kernel per task) checked against '
          'JintuZheng/SparseSSP; no batch norm, max-pool down-sampling, MoDE arm uses the 3 official experts that '
          'fit a 3-kernel (conv3/conv1/avg3; official K=5 set available), one task per minibatch; no Gaussian '
          'sliding-window inference; synthetic cells (3 structure channels, Gaussian optical model) stand in for '
          'AllenCell; 3D U-Net baseline at equal width'),
    Paper('P39', 'HESSO: Towards Automatic Efficient and User Friendly Any Neural Network…',
          'sparsejax/pruning/', 'done', 'optax wrapper checked against microsoft/only_train_once (5 criteria x 0.2, '
          'linear shrink per period); CRIC condensed (loss probes on fixed batches) and it collapsed the MLP in smoke; '
          'group-lasso baseline is a local prox'),
    Paper('P40', 'Efficient Encoding of Graphics Primitives with Simplex-based Structures',
          'generative/reconstruction/', 'partial',
          'hash/simplex encodings d=2..7 in JAX; CPU timings only (no CUDA kernel); 128^2 camera image instead of '
          'gigapixel; NeRF fit on a synthetic view-independent 360-degree sphere scene (small images, one MLP '
          'without view direction, softplus density, no occupancy grid, bin-width deltas)'),
    Paper('P41', 'The Emergence of Essential Sparsity in Large Pre-trained Models: The…',
          'sparsejax/pruning/', 'done', 'ViT/LM from the zoo at smoke scale; claims partly held'),
    Paper('P42', 'Stationary Representations: Optimally Approximating Compatibility and…',
          'geometry/compat/', 'done', 'd-simplex, HOC loss, AC/AM/Def.1 as in miccunifi/iamcl2r; class-incremental digits with one replacement by a wider model (MLP, Adam), not CIFAR-100/ResNet-18; smoke: simplex arms stay searchable across the replacement (ER collapses), but the strict ECC mostly fails (AC <= 0.33)'),
    Paper('P43', 'Iterative Soft Shrinkage Learning for Efficient Image Super-Resolution',
          'sparsejax/pruning/', 'done', 'EDSR-lite on sklearn sample images at smoke scale; claim not reproduced'),
    Paper('P44', 'Efficient LLM Training and Serving with Heterogeneous Context Sharding…',
          'sparsejax/llm/', 'done', 'dkernel pattern + Pallas block-sparse flash attention (lowers for CUDA; splash on TPU); tiny LMs at seq 128; kernel not timed on a GPU'),
    Paper('P45', 'On the Stability of Expressive Positional Encodings for Graph Neural…',
          'geometry/spe/', 'done'),
    Paper('P46', 'LM-Gaussian: Boost Sparse-view 3D Gaussian Splatting with Large Model…',
          'generative/reconstruction/splat/', 'partial', 'pure-JAX tile-free 3DGS (RGB, no SH) on a 4-sphere 360 scene at 16-32px; DUSt3R/Marigold -> corrupted GT depth/normals, ControlNet repair -> tiny project DDPM (SDEdit); L_pr (0.6, point cloud = jittered GT surface points, radius in px), depth-normal (0.05) and distortion (100) as the official code, the latter two from the start of stage 2 (360 config: never), per-pixel depth = exact ray density maximum (RaDe-GS: planar approx.); lrs scaled for few hundred steps; no video-diffusion enhancement'),
    Paper('P47', 'Novel Quadratic Constraints for Extending LipSDP beyond…',
          'geometry/lipschitz/', 'done', 'l2 bounds of MLPs only (MaxMin as in the official code; GroupSort/Householder QCs reconstructed); two-moons nets, not MNIST; no l_inf, residual or implicit models'),
    Paper('P48', 'SliceGPT: Compress Large Language Models by Deleting Rows and Columns',
          'sparsejax/llm/', 'done', 'tiny grammar LM (d=64), PCA/random/no rotation, LoRA recovery fine-tune'),
    Paper('P49', 'Hecate: Unlocking Efficient Sparse Model Training via Fully Sharded…',
          'sparsejax/moe/', 'done', 'reconstruction (no code); FSSDP semantics on 8 emulated devices (dense collectives + masks); speedups modelled only, 3.54x not reproduced'),
    Paper('P50', 'Quick and Robust Feature Selection: the Strength of Energy-efficient…',
          'sparsejax/pruning/', 'done', 'masked-dense JAX cannot show the energy claim; accuracy claim held on digits only'),
)

BY_ID: dict[str, Paper] = {p.id: p for p in PAPERS}


def get(paper_id: str) -> Paper:
    """The paper ``paper_id`` (``"P4"``); ``ValueError`` naming the valid range otherwise."""
    if paper_id not in BY_ID:
        raise ValueError(f"unknown paper id {paper_id!r}; valid ids: P1..P{len(PAPERS)}")
    return BY_ID[paper_id]


# ---------------------------------------------------------------------------------------------
# The README paper table, generated from this registry, the modules and results/.

START, END = "<!-- papers:start -->", "<!-- papers:end -->"
HEADER = ("| # | Paper | Module | Experiment(s) | Status | Measured (this repo: preset, machine, commit) "
          "| Paper's claim |\n|---|---|---|---|---|---|---|")
NO_RESULT = "no recorded result"
PRESET_ORDER = ("full", "smoke")


def follows_contract(module) -> bool:
    """True if ``module`` declares the reporting contract: ``PAPERS``, ``CLAIM`` and ``summarize``."""
    return hasattr(module, "PAPERS") and hasattr(module, "CLAIM") and callable(getattr(module, "summarize", None))


def _cell(text: str, what: str) -> str:
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a str, got {type(text).__name__}")
    if "|" in text or "\n" in text or "\r" in text:
        raise ValueError(f"{what} must be one markdown cell (no '|' or newline), got {text!r}")
    return text.strip()


def experiment_papers(modules: dict) -> dict[str, list[str]]:
    """``{paper id: [experiment names]}`` from each module's ``PAPERS`` (modules without it are skipped)."""
    out: dict[str, list[str]] = {}
    for name, module in sorted(modules.items()):
        ids = getattr(module, "PAPERS", None)
        if ids is None:
            continue
        if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"experiments.{name}.PAPERS must be a tuple of paper ids like ('P4',), got {ids!r}")
        for paper_id in ids:
            get(paper_id)  # raises on an unknown id
            out.setdefault(paper_id, []).append(name)
    return out


def summary_cell(module, record: dict) -> str:
    """``module.summarize(record)`` checked to be one markdown cell; ``ValueError`` naming the module."""
    name = module.__name__.rsplit(".", 1)[-1]
    if not follows_contract(module):
        return "(module has no PAPERS/CLAIM/summarize yet)"
    try:
        text = module.summarize(record)
    except Exception as err:  # a stale record or a broken summarize: say which
        raise ValueError(f"experiments.{name}.summarize failed on the {record.get('preset')!r} record: "
                         f"{type(err).__name__}: {err}") from err
    return _cell(text, f"experiments.{name}.summarize(...)")


def machine_text(record: dict) -> str:
    """``"smoke, 2 CPUs, cpu, 71 s, commit abc1234"`` from a record (``", 2 processes on 2 hosts"``
    after the backend for a multi-process run)."""
    machine = record.get("machine", {})
    parts = [str(record.get("preset", "?"))]
    cpus = machine.get("usable_cpus") or machine.get("cpu_count")
    if cpus:
        parts.append(f"{cpus} CPUs")
    backend = machine.get("backend")
    if backend and backend != "cpu":
        parts.append(f"{machine.get('device_count', 1)}× {machine.get('device_kind') or backend}")
    else:
        parts.append("CPU backend")
    procs = machine.get("process_count") or 1
    if procs > 1:  # a multi-process (multi-host) run; device_count above is over all processes
        hosts = machine.get("host_count") or procs
        parts.append(f"{procs} processes on {hosts} host{'s' if hosts != 1 else ''}")
    if isinstance(record.get("wall_time_s"), (int, float)):
        parts.append(f"{record['wall_time_s']:.0f} s")
    git = record.get("git") or {}
    if git.get("commit"):
        parts.append(f"commit {git['commit'][:7]}{' +local changes' if git.get('dirty') else ''}")
    return ", ".join(parts)


def load_records(results_dir: Path, name: str) -> list[dict]:
    """Records ``results_dir/name/*.json``, ``full`` first, then ``smoke``, then the rest by name."""
    import json

    folder = Path(results_dir) / name
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob("*.json"),
                   key=lambda p: (PRESET_ORDER.index(p.stem) if p.stem in PRESET_ORDER else len(PRESET_ORDER), p.stem))
    records = []
    for path in paths:
        try:
            records.append(json.loads(path.read_text()))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err
    return records


def measured_cell(names: list[str], modules: dict, results_dir: Path) -> str:
    """The "Measured" cell of one paper: per experiment and record, where it ran and its summary."""
    parts = []
    for name in names:
        records = load_records(results_dir, name)
        if not records:
            parts.append(f"`{name}`: {NO_RESULT}")
            continue
        for record in records:
            parts.append(f"`{name}` ({machine_text(record)}): {summary_cell(modules[name], record)}")
    if not parts or all(p.endswith(NO_RESULT) for p in parts):
        return NO_RESULT
    return "<br>".join(parts)


def claim_cell(names: list[str], modules: dict) -> str:
    """The "Paper's claim" cell: the distinct ``CLAIM`` strings of the paper's experiments."""
    claims = []
    for name in names:
        claim = getattr(modules[name], "CLAIM", None)
        if claim is not None:
            claim = _cell(claim, f"experiments.{name}.CLAIM")
            if claim and claim not in claims:
                claims.append(claim)
    return "<br>".join(claims) or "—"


def render_table(modules: dict, results_dir: str | Path) -> str:
    """The whole generated block (markers included) for ``modules`` (``{name: module}``)."""
    results_dir = Path(results_dir)
    by_paper = experiment_papers(modules)
    lines = [START,
             "<!-- generated by `python -m experiments report` from experiments/papers.py, the experiment "
             "modules (PAPERS, CLAIM, summarize) and results/; do not edit by hand -->",
             HEADER]
    for paper in PAPERS:
        names = by_paper.get(paper.id, [])
        status = paper.status + (f" ({paper.note})" if paper.note else "")
        if names:
            measured = measured_cell(names, modules, results_dir)
        else:
            measured = "—" if paper.status == "planned" else NO_RESULT
        experiments = ", ".join(f"`{n}`" for n in names) or "—"
        lines.append(f"| {paper.id} | {paper.title} | `{paper.module}` | {experiments} | {status} | {measured} "
                     f"| {claim_cell(names, modules)} |")
    lines.append(END)
    return "\n".join(lines)


def update_readme(text: str, block: str) -> str:
    """``text`` with the part between the paper-table markers replaced by ``block``."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"the README must contain {START} and then {END} exactly once each")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + block + tail
