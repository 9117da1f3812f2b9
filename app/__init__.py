"""torchdojo's web app: lessons, the editor page, accounts, progress and the runner client."""
