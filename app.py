"""Entry point: `python app.py` locally, and app_file of the Hugging Face Space."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from app.ui import LAUNCH_OPTIONS, build_demo
from dp_core.tasks import DATA_DIR_ENV


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Dynamic Prompting Lab")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="default: $GRADIO_SERVER_NAME, else 127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT") or 7860),
                        help="default: $GRADIO_SERVER_PORT, else 7860")
    parser.add_argument("--share", action="store_true", help="public gradio.live link (off by default)")
    parser.add_argument("--data-dir", default=os.environ.get(DATA_DIR_ENV),
                        help=f"local SuperGLUE folder (default: ${DATA_DIR_ENV}, else the Hugging Face Hub)")
    args = parser.parse_args(argv)
    if args.data_dir and not Path(args.data_dir).is_dir():
        print(f"note: no SuperGLUE folder at {args.data_dir}; loading tasks from the Hugging Face Hub")
        args.data_dir = None
    if args.data_dir is None:
        os.environ.pop(DATA_DIR_ENV, None)  # an unusable folder must not stand in the Hub's way
    build_demo(args.data_dir).queue(default_concurrency_limit=1, max_size=256).launch(
        server_name=args.host, server_port=args.port, share=args.share, **LAUNCH_OPTIONS
    )


if __name__ == "__main__":
    main()
