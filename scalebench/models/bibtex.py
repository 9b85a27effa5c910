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
    "kanazawa2014locally": """@misc{kanazawa2014locally,
  author  = {Kanazawa, Angjoo and Sharma, Abhishek and Jacobs, David W.},
  title   = {Locally Scale-Invariant Convolutional Neural Networks},
  note    = {NIPS 2014 Deep Learning and Representation Learning Workshop},
  year    = {2014},
  eprint  = {1412.5104},
  archivePrefix = {arXiv}
}""",
    "xu2014scale": """@misc{xu2014scale,
  author  = {Xu, Yichong and Xiao, Tianjun and Zhang, Jiaxing and Yang, Kuiyuan and Zhang, Zheng},
  title   = {Scale-Invariant Convolutional Neural Networks},
  year    = {2014},
  eprint  = {1411.6369},
  archivePrefix = {arXiv}
}""",
    "jansson2022scale": """@article{jansson2022scale,
  author  = {Jansson, Ylva and Lindeberg, Tony},
  title   = {Scale-Invariant Scale-Channel Networks: Deep Networks That Generalise to Previously Unseen Scales},
  journal = {Journal of Mathematical Imaging and Vision},
  volume  = {64},
  pages   = {506--536},
  year    = {2022},
  eprint  = {2106.06418},
  archivePrefix = {arXiv}
}""",
    "jansson2021exploring": """@inproceedings{jansson2021exploring,
  author    = {Jansson, Ylva and Lindeberg, Tony},
  title     = {Exploring the Ability of {CNN}s to Generalise to Previously Unseen Scales over Wide Scale Ranges},
  booktitle = {International Conference on Pattern Recognition (ICPR 2020)},
  pages     = {1181--1188},
  year      = {2021},
  eprint    = {2004.01536},
  archivePrefix = {arXiv}
}""",
    "altstidl2023just": """@inproceedings{altstidl2023just,
  author    = {Altstidl, Thomas and Nguyen, An and Schwinn, Leo and K{\\"o}ferl, Franz and Mutschler, Christopher
               and Eskofier, Bj{\\"o}rn and Zanca, Dario},
  title     = {Just a Matter of Scale? {R}eevaluating Scale Equivariance in Convolutional Neural Networks},
  booktitle = {International Joint Conference on Neural Networks (IJCNN)},
  year      = {2023},
  doi       = {10.1109/IJCNN54540.2023.10191724},
  eprint    = {2211.10288},
  archivePrefix = {arXiv}
}""",
    "jaderberg2015spatial": """@inproceedings{jaderberg2015spatial,
  author    = {Jaderberg, Max and Simonyan, Karen and Zisserman, Andrew and Kavukcuoglu, Koray},
  title     = {Spatial Transformer Networks},
  booktitle = {Advances in Neural Information Processing Systems 28 (NeurIPS 2015)},
  year      = {2015},
  eprint    = {1506.02025},
  archivePrefix = {arXiv}
}""",
    "sosnovik2020sesn": """@inproceedings{sosnovik2020sesn,
  author    = {Sosnovik, Ivan and Szmaja, Micha{\\l} and Smeulders, Arnold},
  title     = {Scale-Equivariant Steerable Networks},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2020},
  eprint    = {1910.11093},
  archivePrefix = {arXiv}
}""",
    "sosnovik2021disco": """@inproceedings{sosnovik2021disco,
  author    = {Sosnovik, Ivan and Moskalev, Artem and Smeulders, Arnold},
  title     = {{DISCO}: accurate Discrete Scale Convolutions},
  booktitle = {British Machine Vision Conference (BMVC)},
  year      = {2021},
  eprint    = {2106.02733},
  archivePrefix = {arXiv}
}""",
    "worrall2019deep": """@inproceedings{worrall2019deep,
  author    = {Worrall, Daniel E. and Welling, Max},
  title     = {Deep Scale-spaces: Equivariance Over Scale},
  booktitle = {Advances in Neural Information Processing Systems 32 (NeurIPS 2019)},
  year      = {2019},
  eprint    = {1905.11697},
  archivePrefix = {arXiv}
}""",
    "scalebench_cnn_baseline": """@misc{scalebench_cnn_baseline,
  title  = {scalebench: a benchmark suite for scale generalisation of image networks (plain CNN baseline)},
  note   = {scalebench/models/baselines.py},
  year   = {2026}
}""",
}
