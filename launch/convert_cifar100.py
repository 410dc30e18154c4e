"""Convert CIFAR-100 (python version) to MDS: ``python launch/convert_cifar100.py --in_root DIR --out_root DIR_OR_S3``.

Writes ``{out_root}/train`` and ``{out_root}/test`` with columns x (uint8 32x32x3), y, y_coarse, i.
"""

from __future__ import annotations

from recipes.cli import ArgumentParser, arg_type, run_cli
from recipes.core.rules import Location


def main(argv: list[str]) -> int:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument('--in_root', required=True, type=arg_type(Location()),
                        help='folder holding cifar-100-python/ (or to download into)')
    parser.add_argument('--out_root', required=True, type=arg_type(Location()), help='output folder or s3://bucket/prefix')
    parser.add_argument('--download', action='store_true', help="fetch the archive with torchvision's downloader")
    args = parser.parse_args(argv)

    from recipes.core import storage
    from recipes.core.data.cifar100 import convert_cifar100

    storage.check_reachable(args.out_root)
    convert_cifar100(args.in_root, args.out_root, download=args.download)
    print(f'wrote {storage.join(args.out_root, "train")} and {storage.join(args.out_root, "test")}')
    return 0


if __name__ == '__main__':
    run_cli(main)
