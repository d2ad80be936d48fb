# Batch jobs, batches and events arrive with the batch jobs issue.
