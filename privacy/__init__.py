"""Personal data of patients (152-FZ): retention periods enforced daily, export and erasure on
request, every such action audited."""
