"""crm_bridge package."""
