"""Every setting of the seeded study (``benchmarks/study.py``): the scales, the student
variants (distill.py flags) and the metrics that drive and score each study."""

from __future__ import annotations

# One place for every setting. "cpu": ~8 h of a 2-core CPU in parts (constant learning rate:
# pix2pix's first phase, so a chunked run equals one long run); "paper": the paper's 256 px
# protocol (pix2pix: 286 -> 256 jitter, 200 epochs of batch 1 = 80k steps on 400 facades, linear
# decay over the second half: one chunk, no curve beyond the final point).
# horse -> zebra at cpu scale: no student made zebras in 2000 steps (ngf 8: target share 0.00),
# and the ngf 16 no-KD curve at 1000-3000 steps still moves by +-15 % per point (a GAN at batch
# 1): its stop rule may not fire before 8000 steps (7.5 epochs of the 1007 train horses).
SCALES = {
    "cpu": {"resolution": 64, "load_size": 64, "teacher_ngf": 64, "teacher_ndf": 64,
            "teacher_max_steps": 12000, "teacher_curve_every": 1000, "student_ngf": 16,
            "small_ngf": 8, "shrunk_ndf": 32, "small_ndf": 16, "student_max_steps": 4000,
            "curve_every": 500, "seeds": [0, 1, 2], "kd_weight": 10.0,
            "lr_scheduler": "constant", "window": 2, "tolerance": 0.02, "min_steps": 2000,
            "teacher_min_steps": 4000, "h2z_resolution": 128,
            "h2z_load_size": 128, "h2z_student_ngf": 16, "h2z_small_ngf": 8,
            "h2z_max_steps": 12000, "h2z_curve_every": 1000, "h2z_min_steps": 8000,
            "h2z_mixed_precision": "bf16", "validation_max": 60, "evaluator_steps": 1500,
            "latency_rounds": 30},
    "smoke": {"resolution": 32, "load_size": 32, "teacher_ngf": 8, "teacher_ndf": 16,
              "teacher_max_steps": 4, "teacher_curve_every": 2, "student_ngf": 4,
              "small_ngf": 2, "shrunk_ndf": 8, "small_ndf": 4, "student_max_steps": 4,
              "curve_every": 2, "seeds": [0, 1], "kd_weight": 10.0,
              "lr_scheduler": "constant", "window": 1, "tolerance": 0.02, "min_steps": 2,
              "teacher_min_steps": 2, "h2z_resolution": 32,
              "h2z_load_size": 32, "h2z_student_ngf": 4, "h2z_small_ngf": 2,
              "h2z_max_steps": 2, "h2z_curve_every": 2, "h2z_min_steps": 2,
              "h2z_mixed_precision": "no", "validation_max": 4, "evaluator_steps": 2,
              "latency_rounds": 3},
    "paper": {"resolution": 256, "load_size": 286, "teacher_ngf": 64, "teacher_ndf": 64,
              "teacher_max_steps": 80000, "teacher_curve_every": 80000, "student_ngf": 16,
              "small_ngf": 8, "shrunk_ndf": 32, "small_ndf": 16, "student_max_steps": 80000,
              "curve_every": 80000, "seeds": [0, 1, 2], "kd_weight": 10.0,
              "lr_scheduler": "pix2pix_linear", "window": 2, "tolerance": 0.02,
              "min_steps": 80000, "teacher_min_steps": 80000,
              "h2z_resolution": 256, "h2z_load_size": 286, "h2z_student_ngf": 16,
              "h2z_small_ngf": 8, "h2z_max_steps": 200000, "h2z_curve_every": 200000,
              "h2z_min_steps": 200000, "h2z_mixed_precision": "no", "validation_max": 60,
              "evaluator_steps": 3000, "latency_rounds": 30},
}

# Students: name -> distill.py flags (KD weights: the scale's kd_weight, same for all; NGF and
# NDF: the scale's student width and shrunk discriminator unless a variant says otherwise).
FACADES_VARIANTS = {
    "no_kd": {"wkd_bands": "none"},
    "wkd_high": {"wkd_bands": "high", "lambda_wkd": "KD"},
    "output_kd": {"wkd_bands": "none", "kd_output_weight": "KD"},
    "wkd_low": {"wkd_bands": "low", "lambda_wkd": "KD"},
    "wkd_high_teacher_D": {"wkd_bands": "high", "lambda_wkd": "KD",
                           "discriminator_ndf": "TEACHER_NDF"},
    "small_no_kd": {"wkd_bands": "none", "student_ngf": "SMALL_NGF",
                    "discriminator_ndf": "SMALL_NDF"},
    "small_wkd_high": {"wkd_bands": "high", "lambda_wkd": "KD", "student_ngf": "SMALL_NGF",
                       "discriminator_ndf": "SMALL_NDF"},
    "small_wkd_high_teacher_D": {"wkd_bands": "high", "lambda_wkd": "KD",
                                 "student_ngf": "SMALL_NGF", "discriminator_ndf": "TEACHER_NDF"},
}
# horse -> zebra is the main study (its teacher is clearly better than any student): the claims'
# core first, then the small student (claim 3 is about small students).
H2Z_VARIANTS = {name: FACADES_VARIANTS[name] for name in (
    "no_kd", "wkd_high", "output_kd", "wkd_low", "wkd_high_teacher_D", "small_no_kd",
    "small_wkd_high")}
# The curve metric that decides where a curve flattens, and whether higher is better.
PLATEAU = {"facades": ("fcn_miou", True), "h2z": ("classifier_frechet_distance", False)}
VALIDATION_METRICS = {"facades": "psnr,ssim,l1,fcn", "h2z": "domain"}
TEST_METRICS = {"facades": "psnr,ssim,l1,bands,fcn", "h2z": "bands,domain"}
