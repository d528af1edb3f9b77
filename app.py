"""Entry point: `python app.py` locally, and app_file of the Hugging Face Space."""

from __future__ import annotations

import argparse

from app.ui import build_demo


def main() -> None:
    parser = argparse.ArgumentParser(description="Dynamic Prompting Lab")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="public gradio.live link (off by default)")
    args = parser.parse_args()
    build_demo().queue(default_concurrency_limit=1, max_size=32).launch(
        server_name=args.host, server_port=args.port, share=args.share
    )


if __name__ == "__main__":
    main()
