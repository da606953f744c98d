"""Read functions of the deployments app: import from the submodules (artifacts, deployments)."""
