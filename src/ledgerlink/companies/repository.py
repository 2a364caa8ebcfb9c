from __future__ import annotations

from ledgerlink.db.repository import RepositoryBase
from ledgerlink.models.company import Company


class CompanyRepository(RepositoryBase[Company]):
    model = Company
