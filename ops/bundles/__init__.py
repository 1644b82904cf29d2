"""Guild bundles: one guild's data as versioned JSON Lines, exported and imported by natural keys."""

from ops.bundles.export import guild_export, guild_export_file
from ops.bundles.importing import ImportSummary, guild_import, guild_import_file
from ops.bundles.kinds import FORMAT_VERSION, KINDS, NOT_EXPORTED
from ops.bundles.reading import BundleRefused
from ops.bundles.units import guild_ids_with_data
