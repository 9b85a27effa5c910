"""BibTeX entries of the papers behind the zoo, by the cards' ``bibtex_key`` (one place for every citation).

Each entry states what the paper's front matter states (authors, title, venue, volume, pages, year, arXiv id);
``scalebench_cnn_baseline`` cites scalebench itself, since the plain CNN baseline comes from no paper.
"""

from __future__ import annotations

BIBTEX: dict[str, str] = {
    "lindeberg2022gaussdernet": """@article{lindeberg2022gaussdernet,
  author  = {Lindeberg, Tony},
  title   = {Scale-Covariant and Scale-Invariant {G}aussian Derivative Networks},
  journal = {Journal of Mathematical Imaging and Vision},
  volume  = {64},
  number  = {3},
  pages   = {223--242},
  year    = {2022},
  eprint  = {2011.14759},
  archivePrefix = {arXiv}
}""",
    "perzanowski2025extended": """@article{perzanowski2025extended,
  author  = {Perzanowski, Andrzej and Lindeberg, Tony},
  title   = {Scale Generalisation Properties of Extended Scale-Covariant and Scale-Invariant {G}aussian
             Derivative Networks on Image Datasets with Spatial Scaling Variations},
  journal = {Journal of Mathematical Imaging and Vision},
  volume  = {67},
  year    = {2025},
  eprint  = {2409.11140},
  archivePrefix = {arXiv}
}""",
    "perzanowski2026gaussderresnet": """@misc{perzanowski2026gaussderresnet,
  author  = {Perzanowski, Andrzej and Lindeberg, Tony},
  title   = {Scale-Invariant {G}aussian Derivative Residual Networks},
  year    = {2026},
  eprint  = {2603.02843},
  archivePrefix = {arXiv}
}""",
    "pintea2021resolution": """@article{pintea2021resolution,
  author  = {Pintea, Silvia L. and Tomen, Nergis and Goes, Stanley F. and Loog, Marco and van Gemert, Jan C.},
  title   = {Resolution Learning in Deep Convolutional Networks Using Scale-Space Theory},
  journal = {IEEE Transactions on Image Processing},
  volume  = {30},
  pages   = {8342--8353},
  year    = {2021},
  eprint  = {2106.03412},
  archivePrefix = {arXiv}
}""",
    "he2016deep": """@inproceedings{he2016deep,
  author    = {He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing and Sun, Jian},
  title     = {Deep Residual Learning for Image Recognition},
  booktitle = {IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages     = {770--778},
  year      = {2016},
  eprint    = {1512.03385},
  archivePrefix = {arXiv}
}""",
    "scalebench_cnn_baseline": """@misc{scalebench_cnn_baseline,
  title  = {scalebench: a benchmark suite for scale generalisation of image networks (plain CNN baseline)},
  note   = {scalebench/models/baselines.py},
  year   = {2026}
}""",
}
