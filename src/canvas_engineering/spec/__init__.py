"""Declarations: regions and layouts, connections and topologies, schemas and their JSON, typed
fields and `compile_schema`, the built-in canvases. Plain dataclasses: no `torch.nn` here, and
nothing here imports a later layer (the seed's `CanvasTopology.to_*_mask` methods are the one
allowed call into `lowering/`)."""
