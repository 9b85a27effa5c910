"""Specifications of the rescaled classification datasets (Fashion-MNIST, CIFAR-10, STL-10).

Each :class:`DatasetSpec` holds the protocol of one rescaled dataset, following Perzanowski & Lindeberg:

- J. Perzanowski and T. Lindeberg (2025), "Scale generalisation properties of extended scale-covariant and
  scale-invariant Gaussian derivative networks on image datasets with spatial scaling variations",
  Journal of Mathematical Imaging and Vision 67(29); arXiv:2409.11140 (rescaled Fashion-MNIST, CIFAR-10).
- J. Perzanowski and T. Lindeberg (2026), "Scale-invariant Gaussian derivative residual networks",
  arXiv:2603.02843 (rescaled STL-10).

Training and validation at scale 1 (a build adds other training scales on demand, ``build.py``); test copies
at s = 2^(k/4), k = -4..4 (0.500 to 2.000, 9 sets). Canvases: Fashion-MNIST 72x72 with a zero background;
CIFAR-10 64x64 and STL-10 96x96, mirror-extended (STL-10 is centre-cropped when s > 1). The raw files, their
md5 sums and download addresses are those of torchvision 0.29 (``torchvision.datasets.FashionMNIST``, ``CIFAR10``, ``STL10``).

These are re-implementations following the published protocol, not the original Zenodo files (which are
available on request only); see ``docs/datasets.md`` for the choices that the papers leave open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scalebench.checks import ScalebenchError
from scalebench.datasets_builders.scales import DEFAULT_TEST_SCALES

#: Version of the generator. Bump it whenever the pixels or the file layout of a build change.
GENERATOR_VERSION = "1.0.0"

#: Split sizes of every dataset's *lite* build: 400 training, 100 validation and 100 test images per class,
#: drawn (seeded, stratified) from the full build's splits. Sized so that a 2-core laptop trains the whole zoo
#: (see docs/datasets.md, "The lite build"). Small training sets are usual in this field: SESN's MNIST-scale
#: trains on 10,000 images (Sosnovik et al. 2020).
LITE_SIZES: dict[str, int] = {"train": 4000, "val": 1000, "test": 1000}


@dataclass(frozen=True)
class Resource:
    """One raw file: its path relative to the dataset's raw folder and its md5 (torchvision's value)."""

    filename: str
    md5: str


@dataclass(frozen=True)
class DatasetSpec:
    """The protocol of one rescaled dataset. All fields are recorded in the built files and the manifest.

    Attributes:
        name: dataset name used on the command line (``fashion-mnist``, ``cifar10``, ``stl10``).
        file_prefix: prefix of the HDF5 file names (Lindeberg-group naming).
        canvas: output size (H, W) of every rescaled image.
        channels: 1 (grey) or 3 (RGB).
        source_size: size (h, w) of the raw images.
        padding: ``"zero"`` (zero background) or ``"reflect"`` (half-sample symmetric mirror extension:
            the border pixel is repeated, as numpy's ``mode="symmetric"`` and MATLAB's ``'symmetric'``).
        class_names: the class names, index = label.
        test_scales: default test scales.
        train_scale: default training scale (of the training and validation sets of a new build).
        split_sizes: number of images in train / val / test.
        split_rule: how the train / val / test sets are drawn from the raw files.
        seed: seed of the (stratified) train/val split when the split is random; recorded in every file.
        raw_folder: folder of the raw files inside a raw root (torchvision's layout).
        resources: the raw files read, with their md5.
        archive: the downloadable file (name, md5); ``urls`` its download addresses.
        licence, citation: of the source dataset.
        known_manifest_sha256: manifest sha256 of the canonical full build (default scales, no limit),
            as built by this generator version; None when not yet recorded.
        lite_sizes: split sizes of the canonical *lite* build (``--lite``): a seeded, stratified subset of
            the full build's train, val and test splits (:func:`scalebench.datasets_builders.raw.lite_indices`,
            seed ``lite_seed``), rescaled exactly as the full build.
        known_lite_manifest_sha256: manifest sha256 of the canonical lite build (default scales); None when
            not yet recorded (it is recorded only for builds made here from the real raw files).
    """

    name: str
    file_prefix: str
    canvas: tuple[int, int]
    channels: int
    source_size: tuple[int, int]
    padding: str
    class_names: tuple[str, ...]
    split_sizes: dict[str, int]
    split_rule: str
    raw_folder: str
    resources: tuple[Resource, ...]
    archive: Resource | None
    urls: tuple[str, ...]
    licence: str
    citation: str
    test_scales: tuple[float, ...] = DEFAULT_TEST_SCALES
    train_scale: float = 1.0
    seed: int = 0
    known_manifest_sha256: str | None = None
    lite_sizes: dict[str, int] = field(default_factory=lambda: dict(LITE_SIZES))
    lite_seed: int = 0
    known_lite_manifest_sha256: str | None = None
    notes: str = ""
    interpolation: str = "bicubic"
    antialias: bool = True

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def md5sums(text: str) -> tuple[Resource, ...]:
    """The raw files listed in ``text`` as ``md5sum`` prints them (one ``<md5>  <file name>`` per line).

    Example:
        >>> md5sums("8d4fb7e6c68d591d4c3dfef9ec88bf0d  train-images-idx3-ubyte.gz")
        (Resource(filename='train-images-idx3-ubyte.gz', md5='8d4fb7e6c68d591d4c3dfef9ec88bf0d'),)
    """
    return tuple(
        Resource(name, md5) for md5, name in (line.split(maxsplit=1) for line in text.strip().splitlines())
    )


_FMNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

# fmt: off
DATASETS: dict[str, DatasetSpec] = {
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist", file_prefix="fashionmnist_with_scale_variations",
        canvas=(72, 72), channels=1, source_size=(28, 28), padding="zero",
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        split_sizes={"train": 50000, "val": 10000, "test": 10000},
        split_rule="train: first 50000 images of the official training file; val: its last 10000; "
        "test: the official test file",
        raw_folder="FashionMNIST/raw",
        resources=md5sums("""
            8d4fb7e6c68d591d4c3dfef9ec88bf0d  train-images-idx3-ubyte.gz
            25c81989df183df01b3e8a0aad5dffbe  train-labels-idx1-ubyte.gz
            bef4ecab320f06d8554ea6380940ec79  t10k-images-idx3-ubyte.gz
            bb300cfdad3c16e7a12a480ee83cd310  t10k-labels-idx1-ubyte.gz
        """),
        archive=None,
        urls=(_FMNIST_URL,),
        licence="MIT (Copyright (c) 2017 Zalando SE)",
        citation="H. Xiao, K. Rasul and R. Vollgraf (2017), Fashion-MNIST: a novel image dataset for "
        "benchmarking machine learning algorithms, arXiv:1708.07747",
        known_manifest_sha256="c24274ac57fbefc35302f5c9942beacc6473a0242685a70921fb156d3682adf6",
        known_lite_manifest_sha256="b67ea7e63be7cd4a42514be8e53a49f087777872f48e12ab2c944bf4cab590df",
    ),
    "cifar10": DatasetSpec(
        name="cifar10", file_prefix="cifar10_with_scale_variations",
        canvas=(64, 64), channels=3, source_size=(32, 32), padding="reflect",
        class_names=("airplane", "automobile", "bird", "cat", "deer",
                     "dog", "frog", "horse", "ship", "truck"),
        split_sizes={"train": 40000, "val": 10000, "test": 10000},
        split_rule="train: data_batch_1..4; val: data_batch_5; test: test_batch",
        raw_folder="cifar-10-batches-py",
        resources=md5sums("""
            c99cafc152244af753f735de768cd75f  data_batch_1
            d4bba439e000b95fd0a9bffe97cbabec  data_batch_2
            54ebc095f3ab1f0389bbae665268c751  data_batch_3
            634d18415352ddfa80567beed471001a  data_batch_4
            482c414d41f54cd18b22e5b47cb7c3cb  data_batch_5
            40351d587109b95175f43aff81a1287e  test_batch
            5ff9c542aee3614f3951f8cda6e48888  batches.meta
        """),
        archive=Resource("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
        urls=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
        licence="no explicit licence; free for research use, cite the technical report",
        citation="A. Krizhevsky (2009), Learning multiple layers of features from tiny images, "
        "technical report, University of Toronto",
    ),
    "stl10": DatasetSpec(
        name="stl10", file_prefix="stl10_with_scale_variations",
        canvas=(96, 96), channels=3, source_size=(96, 96), padding="reflect",
        class_names=("airplane", "bird", "car", "cat", "deer",
                     "dog", "horse", "monkey", "ship", "truck"),
        split_sizes={"train": 4000, "val": 1000, "test": 8000},
        split_rule="train/val: the 5000 labelled training images split 400/100 per class by a seeded "
        "permutation (numpy default_rng(seed)), each kept in file order; test: the 8000 test images",
        raw_folder="stl10_binary",
        resources=md5sums("""
            918c2871b30a85fa023e0c44e0bee87f  train_X.bin
            5a34089d4802c674881badbb80307741  train_y.bin
            7f263ba9f9e0b06b93213547f721ac82  test_X.bin
            36f9794fa4beb8a2c72628de14fa638e  test_y.bin
        """),
        archive=Resource("stl10_binary.tar.gz", "91f7769df0f17e558f3565bffb0c7dfb"),
        urls=("http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",),
        licence="no explicit licence; free for research use, cite the paper",
        citation="A. Coates, H. Lee and A. Y. Ng (2011), An analysis of single-layer networks in "
        "unsupervised feature learning, AISTATS, PMLR 15:215-223",
        notes="scalebench variant: canvas, split and scales of the STL-10 paper were not published",
    ),
}
# fmt: on


#: The multi-object segmentation set composed from Fashion-MNIST (``segmentation.py``, docs/segmentation.md).
SEGMENTATION_DATASET = "fashion-mnist-seg"

#: What ``scalebench datasets build --dataset`` takes: a classification dataset, ``all`` three, or the
#: segmentation set (:func:`scalebench.datasets_builders.inventory.build_datasets` dispatches).
BUILD_CHOICES: tuple[str, ...] = (*DATASETS, "all", SEGMENTATION_DATASET)

#: Split sizes of the embedded Fashion-MNIST subset (160 + 40 train/val and 100 test images per class).
EMBEDDED_SIZES: dict[str, int] = {"train": 1600, "val": 400, "test": 1000}


def check_split(split: str) -> str:
    if split not in ("train", "val", "test"):
        raise ScalebenchError(f"Unknown split {split!r}. Valid values are {{'train', 'val', 'test'}}.")
    return split
