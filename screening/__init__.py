"""Cohort screening of a FHIR Bulk Data export (`myotomy-cds screen`)."""
