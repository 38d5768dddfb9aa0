"""The catalog of bundles: ``builder index DIR`` writes it, agents resolve names through it."""

from builder.catalog.codec import LoadedCatalog, catalog_from_dict, catalog_to_dict, load_catalog
from builder.catalog.model import INDEX_FILENAME, Catalog, CatalogEntry
from builder.catalog.scan import scan_directory, write_index

__all__ = ["INDEX_FILENAME", "Catalog", "CatalogEntry", "LoadedCatalog", "catalog_from_dict",
           "catalog_to_dict", "load_catalog", "scan_directory", "write_index"]
